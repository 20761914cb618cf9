"""CircuitPython's ``micropython`` module: ``const`` (and the code emitters' decorators, which
change nothing here)."""
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def const(value: T) -> T:
    """The value itself (CircuitPython folds it into the bytecode; the effect is the same)."""
    return value


def native(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


viper = native
asm_thumb = native

__all__ = ["const", "native", "viper", "asm_thumb"]
