"""The CircuitPython runtime of ``blebridge run`` (see blebridge/script/apis.py for the contract).

A CircuitPython script sees:

- ``_bleio``: blebridge's (binding.py), its ``adapter`` the board at the run's port, so
  ``adafruit_ble`` (installed from PyPI with ``blebridge[circuitpython]``) runs on the board;
- CircuitPython's ``time`` (``monotonic``, ``monotonic_ns``, ``sleep``, ...: CPython's own
  functions, without MicroPython's ``sleep_ms``/``ticks_*``, which CircuitPython lacks too),
  ``microcontroller`` (microcontroller/, bound as _bleio is) and ``micropython`` (shims/),
  ``os.uname()`` naming the board and
  ``sys.implementation.name == "circuitpython"``;
- the modules that drive a board's hardware (:data:`HARDWARE_MODULES`: ``board``,
  ``digitalio``, ``neopixel``, ``busio``, ...) raise ImportError saying blebridge provides BLE
  only, unless the user's own directories (the script's, PYTHONPATH) have a module of that name:
  no stub that pretends, and Blinka's (installed with adafruit-circuitpython-ble, for
  Linux single-board computers) is never imported in their place;
- the language rules of the MicroPython VM CircuitPython runs on (``bytes + str``, ...;
  blebridge/micropython/dialect.py), for the script and the user's modules; and annotations
  never evaluated in the installed CircuitPython libraries (:class:`LibraryLoader`).
"""
from __future__ import annotations

import __future__
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from typing import Any, Callable, NamedTuple, Optional, Sequence

#: On sys.path under ``blebridge run --api circuitpython``, after the user's directories.
SHIMS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims")

#: CircuitPython's modules (core and driver libraries) that drive a board's own hardware, which a
#: PC running the script against a BLE board does not have. Blinka installs several of them
#: (board, busio, digitalio, microcontroller, ...) in site-packages; these names are answered
#: with ImportError before site-packages is searched.
HARDWARE_MODULES = frozenset({
    "alarm", "analogbufio", "analogio", "audiobusio", "audiocore", "audioio", "audiomixer",
    "audiomp3", "audiopwmio", "bitbangio", "board", "busio", "camera", "canio", "countio",
    "digitalio", "displayio", "dotclockframebuffer", "espcamera", "espidf", "espnow",
    "frequencyio", "gifio", "gnss", "i2cdisplaybus", "i2cperipheral", "i2ctarget",
    "imagecapture", "keypad", "keypad_demux", "max3421e", "memorymap", "neopixel",
    "neopixel_write", "nvm", "onewireio", "paralleldisplay", "paralleldisplaybus", "picodvi",
    "ps2io", "pulseio", "pwmio", "rgbmatrix", "rotaryio", "rp2pio", "rtc", "sdcardio",
    "sdioio", "sharpdisplay", "socketpool", "touchio", "usb_cdc", "usb_hid",
    "usb_host", "usb_midi", "usb_video", "watchdog", "wifi", "adafruit_dotstar",
    "adafruit_lis3dh", "adafruit_circuitplayground", "microcontroller.pin",
})

#: ``sys.implementation.version`` under ``blebridge run --api circuitpython``: the CircuitPython
#: release whose ``_bleio`` blebridge's follows (../shared/spec/circuitpython-bleio-latest.txt).
CIRCUITPYTHON_VERSION = (9, 2, 0)

#: Run by ``blebridge repl --api circuitpython`` before its first prompt.
REPL_PRELUDE = "import _bleio\nimport time\n"


def hardware_error(name: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(
        f"no module named '{name}': blebridge provides BLE only (_bleio, adafruit_ble); the "
        f"script runs on this PC, which has no board hardware for {name} to drive",
        name=name)


class _RefusingLoader(importlib.abc.Loader):
    def create_module(self, spec: Any) -> Optional[types.ModuleType]:
        raise hardware_error(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:  # pragma: no cover (never reached)
        raise hardware_error(module.__name__)


def _user_dirs() -> list[str]:
    """The sys.path entries before SHIMS_DIR: the script's directory and PYTHONPATH's."""
    try:
        return sys.path[:sys.path.index(SHIMS_DIR)]
    except ValueError:
        return []


class HardwareFinder(importlib.abc.MetaPathFinder):
    """Answers an import of a HARDWARE_MODULES name with ImportError, unless the user's own
    directories have that module (then the finders after this one import it as usual)."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Any:
        if fullname not in HARDWARE_MODULES:
            return None
        if "." not in fullname and \
                importlib.machinery.PathFinder.find_spec(fullname, _user_dirs()) is not None:
            return None
        return importlib.util.spec_from_loader(fullname, _RefusingLoader())


#: Top-level names of CircuitPython libraries (Adafruit's and the community bundle's on PyPI).
LIBRARY_PREFIXES = ("adafruit_", "circuitpython_")


class LibraryLoader(importlib.machinery.SourceFileLoader):
    """Loads a CircuitPython library with its annotations left unevaluated (PEP 563), as
    CircuitPython's compiler drops them. Libraries name board modules only in annotations
    (adafruit_hid: ``devices: Sequence[usb_hid.Device]``, its ``import usb_hid`` in a
    try/except ImportError); evaluated, that is a NameError here. Never cached as .pyc: a plain
    CPython import of the same file must not get this code."""

    def get_code(self, fullname: str) -> Any:
        source = self.get_source(fullname)
        if source is None:
            raise ImportError(f"no source for {fullname}", name=fullname)
        return compile(source, self.get_filename(fullname), "exec",
                       flags=__future__.annotations.compiler_flag, dont_inherit=True)


class LibraryFinder(importlib.abc.MetaPathFinder):
    """Finds modules as sys.path's PathFinder does and loads the installed CircuitPython
    libraries (LIBRARY_PREFIXES, outside the user's directories) with :class:`LibraryLoader`."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Any:
        if not fullname.startswith(LIBRARY_PREFIXES):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        origin = os.path.realpath(spec.origin or "")
        if any(origin.startswith(os.path.realpath(d) + os.sep) for d in _user_dirs() if d):
            return None          # the user's own module: the dialect finder loads it
        spec.loader = LibraryLoader(spec.loader.name, spec.loader.path)
        return spec


def compile_script(source: str, filename: str) -> tuple[Any, dict[str, Any]]:
    from ..micropython.dialect import HELPERS, compile_script as compile_dialect
    return compile_dialect(source, filename), dict(HELPERS)


def compile_interactive(source: str, filename: str, symbol: str) -> Any:
    from ..micropython.dialect import compile_script as compile_dialect
    return compile_dialect(source, filename, symbol)


class _Version(NamedTuple):
    major: int
    minor: int
    micro: int
    releaselevel: str


def _set_implementation() -> None:
    """``sys.implementation.name`` is "circuitpython", as scripts test it to tell the board
    from Blinka. The other attributes stay CPython's (``cache_tag`` names the .pyc files)."""
    impl = sys.implementation
    if impl.name == "circuitpython":
        return
    attrs = dict(vars(impl))
    attrs["name"] = "circuitpython"
    # A tuple as CircuitPython's (major, minor, micro, prerelease), its fields named as CPython's.
    attrs["version"] = _Version(*CIRCUITPYTHON_VERSION, "")
    attrs["_machine"] = "blebridge board"
    attrs["_cpython"] = impl
    sys.implementation = types.SimpleNamespace(**attrs)  # type: ignore[assignment]


def install(on_board_lost: Callable[[BaseException], None]) -> None:
    from . import binding, runtime
    binding.bind()
    runtime.install()
    _set_implementation()
    if not any(isinstance(f, HardwareFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, HardwareFinder())
    from ..micropython.dialect import install_import_hook
    dialect = install_import_hook()
    if not any(isinstance(f, LibraryFinder) for f in sys.meta_path):
        sys.meta_path.insert(sys.meta_path.index(dialect), LibraryFinder())
    runtime.set_lost_handler(on_board_lost)


def close_all() -> None:
    from . import runtime
    runtime.close_all()
