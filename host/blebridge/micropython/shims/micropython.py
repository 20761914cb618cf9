"""MicroPython's ``micropython`` module for scripts run on the PC by blebridge.

``const`` is the identity (on a board it only lets the compiler inline the value);
``schedule`` runs the function soon on blebridge's scheduler thread, one at a time with the BLE
IRQ handlers (see blebridge.micropython.runtime). The rest are no-ops that exist so scripts
written for a board import and run unchanged.
"""
from typing import Any, Callable, TypeVar

from blebridge.micropython.runtime import install_time_extensions as _install
from blebridge.micropython.runtime import schedule

_install()

T = TypeVar("T")


def const(expr: T) -> T:
    return expr


def opt_level(level: Any = None) -> Any:
    return 0 if level is None else None


def alloc_emergency_exception_buf(size: int) -> None:
    return None


def mem_info(verbose: Any = None) -> None:
    return None


def qstr_info(verbose: Any = None) -> None:
    return None


def stack_use() -> int:
    return 0


def heap_lock() -> int:
    return 0


def heap_unlock() -> int:
    return 0


def kbd_intr(chr: int) -> None:
    return None


def _identity_decorator(fn: Callable) -> Callable:
    return fn


native = viper = _identity_decorator

__all__ = ["const", "schedule", "opt_level", "alloc_emergency_exception_buf", "mem_info",
           "qstr_info", "stack_use", "heap_lock", "heap_unlock", "kbd_intr", "native", "viper"]
