"""``aioble.config``: MicroPython's ``BLE.config`` names and values, on a Radio's board.

``config('mac')`` is ``(addr_type, addr)`` with the address most significant byte first (so
``aioble.Device(*aioble.config('mac'))`` names the board); ``gap_name`` is bytes; ``bond``,
``mitm``, ``le_secure`` are bools; ``mtu``, ``io``, ``addr_mode``, ``rxbuf`` ints.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import calls
from .. import protocol as P
from ..ble import address as _address
from ..errors import BoardError
from .core import data_bytes

if TYPE_CHECKING:
    from .radio import Radio

_CFG = P.CONSTANTS["config"]
#: MicroPython's config names -> the protocol's keys.
KEYS = {"mac": "MAC", "addr_mode": "ADDR_MODE", "gap_name": "GAP_NAME", "mtu": "MTU",
        "rxbuf": "RXBUF", "bond": "BOND", "mitm": "MITM", "io": "IO", "le_secure": "LE_SECURE"}
#: ATT MTU range (BLE_ATT_MTU_DFLT .. BLE_ATT_MTU_MAX), bytes; the board may cap it lower.
ATT_MTU_MIN, ATT_MTU_MAX = 23, 527
#: Largest ATT MTU the board can serve (its biggest attribute plus the 3-byte ATT header).
BOARD_MTU_MAX = P.LIMITS["MAX_ATTR_LEN"] + 3
#: IO capabilities (Core spec Vol 3 Part H 3.5.1): display only .. keyboard+display.
IO_MAX = 4
GAP_NAME_MAX = 31


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"config {name} must be an int, not {type(value).__name__}")
    return value


def _get(radio: "Radio", name: Any) -> Any:
    if not isinstance(name, str):
        raise TypeError(f"config name must be a str, not {type(name).__name__}")
    if name not in KEYS:
        raise ValueError(f"unknown config param {name!r} (known: {', '.join(KEYS)})")
    value = calls.config_get(radio.board, key=_CFG[KEYS[name]])
    if name == "mac":
        addr_type, addr = value
        return (int(addr_type), _address.from_wire(addr))
    if name == "gap_name":
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if name in ("bond", "mitm", "le_secure"):
        return bool(value)
    return int(value)


def _set(radio: "Radio", name: str, value: Any) -> None:
    wire: Any
    if name == "gap_name":
        raw = data_bytes(value, "config gap_name")
        if len(raw) > GAP_NAME_MAX:
            raise ValueError(f"config gap_name of {len(raw)} bytes is over {GAP_NAME_MAX}")
        wire = raw.decode("utf-8")
    elif name == "mtu":
        mtu = _int(name, value)
        if not ATT_MTU_MIN <= mtu <= ATT_MTU_MAX:
            raise ValueError(f"config mtu {mtu} is outside {ATT_MTU_MIN}..{ATT_MTU_MAX}")
        wire = min(mtu, BOARD_MTU_MAX)
    elif name == "mac":
        addr = data_bytes(value, "config mac")
        if len(addr) != _address.ADDR_LEN:
            raise ValueError(f"config mac must be {_address.ADDR_LEN} bytes, not {len(addr)}")
        wire = _address.to_wire(addr)
    elif name in ("bond", "mitm", "le_secure"):
        wire = bool(value)
    elif name == "io":
        wire = _int(name, value)
        if not 0 <= wire <= IO_MAX:
            raise ValueError(f"config io {wire} is not an IO capability (0..{IO_MAX})")
    elif name in ("addr_mode", "rxbuf"):
        wire = _int(name, value)
    else:
        raise ValueError(f"unknown config param {name!r} (known: {', '.join(KEYS)})")
    try:
        calls.config_set(radio.board, key=_CFG[KEYS[name]], value=wire)
    except BoardError as exc:
        if exc.status in (P.STATUS["EINVAL"], P.STATUS["BAD_ARG_TYPE"]):
            raise ValueError(f"config {name}={value!r}: the board refused it: {exc}") from None
        raise


def config(radio: "Radio", *args: Any, **kwargs: Any) -> Any:
    """``config('name')`` reads one value; ``config(name=value, ...)`` sets values. The radio
    is turned on first, as aioble does."""
    radio.ensure_active()
    if kwargs:
        if args:
            raise TypeError("config(): give one name to read, or name=value pairs to set, not both")
        for name, value in kwargs.items():
            _set(radio, name, value)
        return None
    if len(args) != 1:
        raise TypeError("config(): give one name to read, or name=value pairs to set")
    return _get(radio, args[0])
