"""Device paths and pyserial URLs (rfc2217://, socket://, hwgrep://, loop://) via serial_for_url;
rfc2217:// through blebridge.transport.rfc2217 (pyserial's client with a bulk receive path)."""
from __future__ import annotations

import errno
import os
from typing import Any

import serial

from ..errors import PortOpenError
from ..ports import known_board
from .reader import READ_POLL_S

#: Baud rate for UART-bridge boards (ESP32 dev kits); USB CDC ignores it. The nimble port's
#: UART must use the same value. Env BLEBRIDGE_BAUD overrides.
DEFAULT_BAUDRATE = 921600

_BUSY_ERRNOS = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}
_PERMISSION_ERRNOS = {errno.EACCES, errno.EPERM}
_MISSING_ERRNOS = {errno.ENOENT, errno.ENODEV, errno.ENXIO}


def _is_local_device(spec: str) -> bool:
    return "://" not in spec


def _usb_ids(path: str) -> tuple[int | None, int | None]:
    try:
        from serial.tools import list_ports
        real = os.path.realpath(path)
        for p in list_ports.comports():
            if p.device in (path, real):
                return p.vid, p.pid
    except Exception:   # listing ports is best effort here; the open itself reports problems
        pass
    return None, None


def classify_open_error(spec: str, exc: BaseException) -> PortOpenError:
    """Map an exception from opening ``spec`` to a PortOpenError with the fitting hint."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    low = text.lower()
    if err in _BUSY_ERRNOS or "exclusively lock" in low or "resource busy" in low:
        return PortOpenError(spec, "the port is busy", PortOpenError.HINT_BUSY, err)
    if err in _PERMISSION_ERRNOS or "permission denied" in low:
        return PortOpenError(spec, "permission denied", PortOpenError.HINT_PERMISSION, err)
    if err in _MISSING_ERRNOS or "no such file" in low or "no ports found" in low:
        return PortOpenError(spec, "no such port", PortOpenError.HINT_NO_SUCH_PORT, err)
    if err == errno.ECONNREFUSED or "connection refused" in low:
        return PortOpenError(spec, "connection refused",
                             "check that ser2net (or the RFC 2217 server) runs on that host and port", err)
    if isinstance(exc, ValueError):
        return PortOpenError(spec, text.splitlines()[0] if text else "invalid port spec",
                             "ports are device paths, rfc2217://, socket://, hwgrep://, sim:NAME, "
                             "id:SERIAL or auto", err)
    first = text.splitlines()[0] if text else type(exc).__name__
    return PortOpenError(spec, first, PortOpenError.HINT_NO_SUCH_PORT, err)


def open_serial(spec: str, *, baudrate: int | None = None, timeout: float = READ_POLL_S,
                exclusive: bool = True, **kw: Any) -> Any:
    """Open a device path or a pyserial URL. Local devices are locked (``exclusive``)."""
    if baudrate is None:
        baudrate = int(os.environ.get("BLEBRIDGE_BAUD", DEFAULT_BAUDRATE))
    try:
        if spec[:10].lower() == "rfc2217://":
            # pyserial's own client reads byte by byte (see .rfc2217); ours has its grammar.
            from .rfc2217 import RFC2217Serial
            ser = RFC2217Serial(None, baudrate=baudrate, timeout=timeout, write_timeout=None, **kw)
            ser.port = spec
        else:
            ser = serial.serial_for_url(spec, do_not_open=True, baudrate=baudrate, timeout=timeout,
                                        write_timeout=None, **kw)
        if _is_local_device(spec):
            ser.exclusive = exclusive
            vid, pid = _usb_ids(spec)
            kb = known_board(vid, pid)
            if kb is not None and not kb.certain:
                # On ESP32 dev kits DTR/RTS drive EN and IO0 through the auto-reset circuit:
                # leave both released so opening the port does not reset the chip.
                ser.dtr = False
                ser.rts = False
        ser.open()
    except PortOpenError:
        raise
    except (serial.SerialException, OSError, ValueError) as exc:
        raise classify_open_error(spec, exc) from exc
    ser.blebridge_spec = spec
    return ser
