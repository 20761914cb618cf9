"""``id:SERIAL`` (a USB port by serial number) and ``auto`` (first known board that answers).

``auto`` asks each candidate with probe_handshake (blebridge.transport.probe), which needs
nothing from the RPC client above the transports.
"""
from __future__ import annotations

from typing import Any

from ..errors import BlebridgeError, PortOpenError
from ..ports import board_candidates, find_by_serial
from .probe import probe_handshake
from .serial_port import open_serial

#: Seconds a candidate board gets to answer the handshake during ``auto``.
AUTO_PROBE_TIMEOUT_S = 1.5


def open_by_serial(serial_number: str, **kw: Any) -> Any:
    spec = f"id:{serial_number}"
    try:
        port = find_by_serial(serial_number)
    except LookupError as exc:
        raise PortOpenError(spec, str(exc), PortOpenError.HINT_NO_SUCH_PORT) from exc
    ser = open_serial(port.device, **kw)
    ser.blebridge_spec = port.device
    return ser


def open_auto(**kw: Any) -> Any:
    """Open the first known board (blebridge.ports order) whose firmware answers the handshake."""
    tried: list[str] = []
    for port in board_candidates():
        try:
            ser = open_serial(port.device, **kw)
        except PortOpenError as exc:
            tried.append(f"{port.device} ({exc.reason})")
            continue
        try:
            info = probe_handshake(ser, AUTO_PROBE_TIMEOUT_S)
        except (BlebridgeError, OSError) as exc:
            info = None
            tried.append(f"{port.device} ({exc})")
        else:
            if info is None:
                tried.append(f"{port.device} (no answer)")
        if info is not None:
            ser.blebridge_spec = port.device
            return ser
        ser.close()
    detail = "; ".join(tried) if tried else "no known board is plugged in"
    raise PortOpenError("auto", f"no board answered the handshake ({detail})",
                        "run `blebridge list`; a board that does not answer may need `blebridge flash`")
