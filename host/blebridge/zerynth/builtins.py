"""Zerynth's builtins that BLE scripts use, for CPython (names a script sees unimported).

- ``sleep(time, time_unit=MILLIS)``: milliseconds by default;
- ``random()`` / ``random(a, b)``: an int, in [a, b] when given;
- ``thread(fn, *args, prio=PRIO_NORMAL, size=-1)``: started, returned; an exception ending it
  is printed with its traceback;
- ``print(*objects, sep=" ", end="\\n", stream=None)``: to ``stream``, else the default stream
  (streams.serial(): the console, stdout);
- ``hex(x, prefix="0x")``: Zerynth's (uppercase, zero-padded to 2, 4 or 8 digits);
- ``bytearray``: also takes str where Zerynth's does (slice assignment, extend, append of a
  one-character str, construction), as UTF-8;
- ``new_exception(Name, Parent, msg)``: rewritten by the dialect (run.py) into a class;
- pins: ``pinMode``, ``digitalRead``, ``digitalWrite`` and ``LED0``/``BTN0``... on simulated
  pins: an output keeps what was written; an input reads the level given in env
  ``BLEBRIDGE_ZERYNTH_PINS`` (``BTN0=1,D5=0``), else LOW;
- constants: time units, pin modes and levels, thread priorities, the P* type codes (as the
  Python types: ``type(x) == PSTRING`` works), Zerynth's exception names.
"""
from __future__ import annotations

import builtins as _py
import os
import random as _random
import sys
import threading
import time as _time
import traceback
from typing import Any, Optional

from .ble import hex_byte as hex   # noqa: A001 - Zerynth's hex replaces Python's here

NANOS, MICROS, MILLIS, SECONDS = 0, 1, 2, 3
#: Seconds per time unit.
_UNIT_S = {NANOS: 1e-9, MICROS: 1e-6, MILLIS: 1e-3, SECONDS: 1.0}

INPUT, INPUT_PULLUP, INPUT_PULLDOWN, INPUT_PULLNONE = 1, 2, 3, 1
OUTPUT, OUTPUT_PUSHPULL, OUTPUT_OPENDRAIN, OUTPUT_HIGHDRIVE, INPUT_ANALOG = 4, 4, 5, 6, 7
LOW, HIGH = 0, 1
HIGH_TO_LOW, LOW_TO_HIGH, FALLING_EDGE, RISING_EDGE, BOTH_EDGES = 0, 1, 0, 1, 2
PRIO_IDLE, PRIO_LOWEST, PRIO_LOWER, PRIO_LOW, PRIO_NORMAL, PRIO_HIGH, PRIO_HIGHER, PRIO_HIGHEST = range(8)

PSMALLINT = PINTEGER = int
PFLOAT = PNUMBER = float
PBOOL = bool
PSTRING = str
PBYTES = bytes
PBYTEARRAY = _py.bytearray
PLIST = list
PTUPLE = tuple
PRANGE = PSEQUENCE = range
PFSET = frozenset
PSET = set
PDICT = dict
PNONE = type(None)

#: Env naming input pin levels: ``NAME=LEVEL`` pairs separated by commas.
PINS_ENV = "BLEBRIDGE_ZERYNTH_PINS"
#: Pin names Zerynth boards define (leds, buttons, digital pins); each is its own name.
_PIN_NAMES = [f"LED{i}" for i in range(4)] + [f"BTN{i}" for i in range(2)] + [f"D{i}" for i in range(64)] \
    + [f"A{i}" for i in range(8)]


class Pin(str):
    """A pin name (Zerynth pins are ints; names keep the env readable)."""


for _name in _PIN_NAMES:
    globals()[_name] = Pin(_name)
del _name

_pins_lock = threading.Lock()
_pin_modes: dict[str, int] = {}
_pin_levels: dict[str, int] = {}


def _env_levels() -> dict[str, int]:
    levels = {}
    for item in os.environ.get(PINS_ENV, "").split(","):
        name, eq, level = item.strip().partition("=")
        if not eq:
            continue
        if level.strip() not in ("0", "1"):
            raise ValueError(f"{PINS_ENV}: level of {name} must be 0 or 1, not {level!r}")
        levels[name.strip()] = int(level)
    return levels


def _pin(pin: Any) -> str:
    if not isinstance(pin, Pin):
        raise InvalidPinError(f"not a pin: {pin!r}")
    return str(pin)


def pinMode(pin: Any, mode: Any) -> None:   # noqa: N802 - Zerynth's name
    name = _pin(pin)
    if mode not in (INPUT, INPUT_PULLUP, INPUT_PULLDOWN, OUTPUT, OUTPUT_OPENDRAIN, OUTPUT_HIGHDRIVE,
                    INPUT_ANALOG):
        raise ValueError(f"unknown pin mode {mode!r}")
    with _pins_lock:
        _pin_modes[name] = mode


def digitalWrite(pin: Any, value: Any) -> None:   # noqa: N802
    name = _pin(pin)
    with _pins_lock:
        _pin_levels[name] = 1 if value else 0


def digitalRead(pin: Any) -> int:   # noqa: N802
    name = _pin(pin)
    with _pins_lock:
        mode = _pin_modes.get(name)
        if mode in (OUTPUT, OUTPUT_OPENDRAIN, OUTPUT_HIGHDRIVE):
            return _pin_levels.get(name, LOW)
    if mode is None:
        raise InvalidHardwareStatusError(f"pin {name} is not configured: call pinMode first")
    return _env_levels().get(name, HIGH if mode == INPUT_PULLUP else LOW)


# -- Zerynth's exceptions that Python lacks ---------------------------------------------------------

class UnsupportedError(RuntimeError):
    pass


class PeripheralError(Exception):
    pass


class InvalidPinError(PeripheralError, ValueError):
    pass


class InvalidHardwareStatusError(PeripheralError, RuntimeError):
    pass


class HardwareInitializationError(PeripheralError, RuntimeError):
    pass


def new_exception(name: str, parent: type = Exception, msg: str = "") -> type:
    """The class ``new_exception(Name, Parent, msg)`` declares (the dialect passes the name)."""
    if not isinstance(parent, type) or not issubclass(parent, BaseException):
        raise TypeError(f"new_exception: the parent must be an exception, not {parent!r}")
    attrs: dict[str, Any] = {"__module__": "__main__"}
    if msg:
        def __init__(self: BaseException, *args: Any) -> None:
            parent.__init__(self, *(args or (msg,)))
        attrs["__init__"] = __init__
    return type(name, (parent,), attrs)


# -- time, randomness, threads, print -------------------------------------------------------------

def sleep(duration: Any, time_unit: Any = MILLIS) -> None:
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise TypeError(f"sleep() takes a number, not {type(duration).__name__}")
    if time_unit not in _UNIT_S:
        raise ValueError(f"unknown time unit {time_unit!r}: use MILLIS, MICROS, NANOS or SECONDS")
    if duration > 0:
        _time.sleep(duration * _UNIT_S[time_unit])


def random(*args: Any) -> int:
    """random(): an int (31 bits); random(a, b): an int in [a, b]."""
    if not args:
        return _random.getrandbits(31)
    if len(args) != 2:
        raise TypeError(f"random() takes 0 or 2 arguments ({len(args)} given)")
    a, b = args
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"random() takes ints, not {type(v).__name__}")
    if a > b:
        raise ValueError(f"random(a, b) needs a <= b, not {a} > {b}")
    return _random.randint(a, b)


def thread(fn: Any, *args: Any, prio: Any = PRIO_NORMAL, size: Any = -1) -> threading.Thread:
    if not callable(fn):
        raise TypeError(f"thread() takes a function, not {type(fn).__name__}")

    def body() -> None:
        try:
            fn(*args)
        except Exception:
            _py.print(f"thread {getattr(fn, '__name__', fn)!s} ended by an exception:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)

    th = threading.Thread(target=body, name=f"zerynth {getattr(fn, '__name__', 'thread')}", daemon=True)
    th.start()
    return th


#: The stream print writes to (streams.serial() sets it); None: stdout.
default_stream: Optional[Any] = None


def print(*objects: Any, sep: str = " ", end: str = "\n", stream: Any = None, **kwargs: Any) -> None:  # noqa: A001
    if kwargs:
        raise TypeError(f"print() got an unexpected keyword argument {next(iter(kwargs))!r}")
    if stream is None or stream is sys.stdout or stream is sys.stderr:
        _py.print(*objects, sep=sep, end=end, file=stream or (default_stream or sys.stdout), flush=True)
        return
    stream.write(sep.join(str(o) for o in objects) + end)


# -- bytearray as Zerynth's: str where bytes go ------------------------------------------------------

def _utf8(value: Any) -> Any:
    return value.encode("utf-8") if isinstance(value, str) else value


class bytearray(_py.bytearray):   # noqa: N801 - replaces the builtin in scripts
    """bytearray that takes str where Zerynth's does (``value[2:10] = "Zerynth!"``)."""

    def __init__(self, source: Any = b"", *args: Any) -> None:
        if isinstance(source, str) and not args:
            source = source.encode("utf-8")
        super().__init__(source, *args)

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            value = _utf8(value)
        elif isinstance(value, str) and len(value) == 1:
            value = ord(value)
        super().__setitem__(index, value)

    def extend(self, values: Any) -> None:
        super().extend(_utf8(values))

    def append(self, value: Any) -> None:
        super().append(ord(value) if isinstance(value, str) and len(value) == 1 else value)

    def __iadd__(self, other: Any) -> "bytearray":
        return super().__iadd__(_utf8(other))

    def __add__(self, other: Any) -> "bytearray":
        return bytearray(_py.bytearray(self) + _utf8(other))


#: The names a script sees without importing (blebridge run --api zerynth).
NAMES = ("sleep", "random", "thread", "print", "hex", "bytearray", "new_exception", "pinMode",
         "digitalRead", "digitalWrite", "NANOS", "MICROS", "MILLIS", "SECONDS", "INPUT", "INPUT_PULLUP",
         "INPUT_PULLDOWN", "INPUT_PULLNONE", "OUTPUT", "OUTPUT_PUSHPULL", "OUTPUT_OPENDRAIN",
         "OUTPUT_HIGHDRIVE", "INPUT_ANALOG", "LOW", "HIGH", "HIGH_TO_LOW", "LOW_TO_HIGH",
         "FALLING_EDGE", "RISING_EDGE", "BOTH_EDGES", "PRIO_IDLE", "PRIO_LOWEST", "PRIO_LOWER",
         "PRIO_LOW", "PRIO_NORMAL", "PRIO_HIGH", "PRIO_HIGHER", "PRIO_HIGHEST", "PSMALLINT",
         "PINTEGER", "PFLOAT", "PNUMBER", "PBOOL", "PSTRING", "PBYTES", "PBYTEARRAY", "PLIST",
         "PTUPLE", "PRANGE", "PSEQUENCE", "PFSET", "PSET", "PDICT", "PNONE", "UnsupportedError",
         "PeripheralError", "InvalidPinError", "InvalidHardwareStatusError",
         "HardwareInitializationError", *_PIN_NAMES)


def names() -> dict[str, Any]:
    """The builtins a script's globals get."""
    g = globals()
    return {n: g[n] for n in NAMES}
