"""aioble's security: ``pair`` and the bond store.

Bonding secrets the board asks for are kept by the host in one JSON file per board
(blebridge.ble.bonds; directory: env BLEBRIDGE_SECRETS_DIR, see docs/micropython.md), not in
aioble's ``ble_secrets.json``: boards keep their bonds across runs either way.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .. import calls
from .. import protocol as P
from ..ble.bonds import SecretStore
from .core import check_timeout

if TYPE_CHECKING:
    from .device import DeviceConnection

_CFG = P.CONSTANTS["config"]
#: IO capabilities (Core spec Vol 3 Part H 3.5.1).
IO_CAPABILITY_DISPLAY_ONLY = 0
IO_CAPABILITY_DISPLAY_YESNO = 1
IO_CAPABILITY_KEYBOARD_ONLY = 2
IO_CAPABILITY_NO_INPUT_OUTPUT = 3
IO_CAPABILITY_KEYBOARD_DISPLAY = 4


def load_secrets(path: Optional[str] = None, *, radio: Any = None) -> None:
    """Use the bond store in file ``path`` (JSON, blebridge's format) for the board; None:
    the board's default file. Call before the radio is turned on, as with aioble."""
    from .radio import default
    r = radio or default()
    r.session.use_secret_store(SecretStore(Path(path)) if path else None)
    r.secret_store()


async def pair(connection: "DeviceConnection", bond: bool = True, le_secure: bool = True,
               mitm: bool = False, io: int = IO_CAPABILITY_NO_INPUT_OUTPUT,
               timeout_ms: int = 20000) -> None:
    """Pair (and with ``bond`` keep the keys); returns once the link is encrypted."""
    if isinstance(io, bool) or not isinstance(io, int) or not 0 <= io <= IO_CAPABILITY_KEYBOARD_DISPLAY:
        raise ValueError(f"pair(): io must be an IO capability 0..4, not {io!r}")
    timeout_s = check_timeout(timeout_ms)
    radio = connection._radio
    for key, value in (("BOND", bool(bond)), ("LE_SECURE", bool(le_secure)), ("MITM", bool(mitm)), ("IO", io)):
        calls.config_set(radio.board, key=_CFG[key], value=value)
    calls.gap_pair(radio.board, conn=connection._handle("pair"))
    try:
        await radio.wait(lambda: connection.encrypted, timeout_s, connection)
    except asyncio.TimeoutError:
        raise asyncio.TimeoutError(f"pair(): the link was not encrypted within {timeout_ms} ms") from None
