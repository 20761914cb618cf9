"""Make blebridge's ``_bleio`` the one ``import _bleio`` gives (and so the one adafruit_ble uses).

``pip install 'blebridge[circuitpython]'`` brings adafruit-circuitpython-ble from PyPI, and with
it Adafruit-Blinka and adafruit-blinka-bleio, whose ``_bleio`` package (bleak, the PC's own
Bluetooth adapter; central only) sits in site-packages under the same top-level name. Importing
Blinka's one is not harmless: it makes an adapter and starts a bleak thread at import. So:

- :func:`bind` puts a finder first on ``sys.meta_path`` that answers ``import _bleio`` with
  blebridge's module (:data:`BLEIO_MODULE`), before any ``_bleio`` of sys.path is looked at,
  and ``import microcontroller`` with blebridge's (Blinka's has no ``cpu`` on a PC; adafruit_ble's
  DeviceInfoService reads ``microcontroller.cpu.uid``): :data:`ALIASES`.
  ``import blebridge.circuitpython`` and ``blebridge run --api circuitpython`` call it.
- Should Blinka's ``_bleio`` have been imported already (``import adafruit_ble`` before
  ``import blebridge.circuitpython`` in a program), :func:`bind` replaces it in ``sys.modules``
  and in the globals of every ``adafruit_ble`` module imported so far (their functions look
  ``_bleio`` up at call time; the one module-level object of a ``_bleio`` class, a UUID of
  adafruit_ble.services.standard.hid, is remade with ours).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
import types
from typing import Any, Optional, Sequence

#: blebridge's _bleio: what ``import _bleio`` gives once bound.
BLEIO_MODULE = "blebridge.circuitpython._bleio"
#: The top-level name CircuitPython (and adafruit_ble) import it by.
NAME = "_bleio"
#: Top-level names answered with blebridge's modules, as CircuitPython's built-in modules are
#: found before any file of the same name.
ALIASES = {NAME: BLEIO_MODULE, "microcontroller": "blebridge.circuitpython.microcontroller"}
#: Packages whose modules refer to ``_bleio`` by a module global (rebound by bind()).
CLIENT_PACKAGES = ("adafruit_ble",)

_lock = threading.Lock()


class _Loader(importlib.abc.Loader):
    """Loads an alias as blebridge's module: the module object itself, not a copy."""

    def create_module(self, spec: Any) -> types.ModuleType:
        return importlib.import_module(ALIASES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        # Already executed as BLEIO_MODULE; the import system now files it under _bleio too.
        return None


class BleioFinder(importlib.abc.MetaPathFinder):
    """Answers ``import _bleio`` and ``import microcontroller`` (the top-level names: ALIASES)
    with blebridge's modules."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Any:
        if fullname not in ALIASES:
            return None
        return importlib.util.spec_from_loader(fullname, _Loader(), origin=ALIASES[fullname],
                                               is_package=True)


def _is_ours(module: Any) -> bool:
    return getattr(module, "__name__", None) in (BLEIO_MODULE, NAME) and \
        sys.modules.get(BLEIO_MODULE) is module


def bind() -> None:
    """``import _bleio`` gives blebridge's module from now on, in this process (idempotent)."""
    with _lock:
        if not any(isinstance(f, BleioFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, BleioFinder())
        foreign = sys.modules.get(NAME)
        if foreign is None or _is_ours(foreign):
            return
        ours = importlib.import_module(BLEIO_MODULE)
        for name in [n for n in sys.modules if n == NAME or n.startswith(NAME + ".")]:
            del sys.modules[name]
        sys.modules[NAME] = ours
        _rebind_clients(foreign, ours)


def _rebind_clients(foreign: types.ModuleType, ours: types.ModuleType) -> None:
    for name, module in list(sys.modules.items()):
        if not name.split(".")[0] in CLIENT_PACKAGES or module is None:
            continue
        namespace = vars(module)
        for key, value in list(namespace.items()):
            if value is foreign:
                namespace[key] = ours
            elif type(value).__module__.split(".")[0] == NAME and type(value).__name__ == "UUID":
                namespace[key] = _remake_uuid(value, ours)


def _remake_uuid(uuid: Any, ours: types.ModuleType) -> Any:
    if uuid.size == 16:
        return ours.UUID(uuid.uuid16)
    return ours.UUID(bytes(uuid.uuid128))
