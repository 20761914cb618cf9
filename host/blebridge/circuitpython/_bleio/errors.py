"""``_bleio``'s exceptions, with CircuitPython's names and bases.

Each also inherits blebridge's root (BlebridgeError), and ``ConnectionError`` the builtin
ConnectionError too: CircuitPython 7+ raises the builtin ``ConnectionError`` ("Not connected")
where 5.x raised ``_bleio.ConnectionError``, so one class answers both ``except`` clauses.
"""
from __future__ import annotations

import builtins

from ...errors import BlebridgeError


class BluetoothError(BlebridgeError):
    """Catchall exception for Bluetooth related errors."""


class RoleError(BluetoothError):
    """A resource used in the wrong role (a local CCCD set, for example)."""


class SecurityError(BluetoothError):
    """A security related error (pairing failed, insufficient encryption or authentication)."""


class ConnectionError(BluetoothError, builtins.ConnectionError):  # noqa: A001 - CircuitPython's name
    """A connection is unavailable (not connected, or disconnected meanwhile)."""


def not_connected(message: str = "Not connected") -> ConnectionError:
    return ConnectionError(message)


def invalid(name: str) -> ValueError:
    """CircuitPython's mp_arg_error_invalid."""
    return ValueError(f"Invalid {name}")


def check_int(value: object, name: str) -> int:
    """An int argument (bools allowed, as MicroPython treats them as ints)."""
    if not isinstance(value, int):
        raise TypeError(f"{name} must be of type int, not {type(value).__name__}")
    return int(value)


def check_int_min(value: object, minimum: int, name: str) -> int:
    v = check_int(value, name)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}")
    return v


def check_int_range(value: object, lo: int, hi: int, name: str) -> int:
    v = check_int(value, name)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be {lo}-{hi}")
    return v


def check_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be of type float, not {type(value).__name__}")
    return float(value)


def check_float_non_negative(value: object, name: str) -> float:
    v = check_float(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0")
    return v


def buffer(value: object, name: str) -> bytes:
    """A readable buffer's bytes (CircuitPython's mp_get_buffer_raise): TypeError otherwise.
    A str is its UTF-8 bytes, as MicroPython's str offers them as a read-only buffer."""
    if isinstance(value, str):
        return value.encode("utf-8")
    try:
        with memoryview(value) as mv:  # type: ignore[arg-type]
            return mv.tobytes()
    except TypeError:
        raise TypeError(f"{name}: object with buffer protocol required, not "
                        f"{type(value).__name__}") from None


def check_type(value: object, cls: type, name: str) -> None:
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be of type {cls.__name__}, not {type(value).__name__}")
