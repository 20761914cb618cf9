"""Zerynth's ``wireless.ble`` over blebridge (issue 11).

- ble.py: ``wireless.ble`` on one board (ZerynthBle), the drivers' ``init()``, several boards
  (``open_ble``);
- beacons.py: ``wireless.ble_beacons`` (Eddystone, iBeacon);
- builtins.py: Zerynth's builtins a script uses (sleep in ms, random(a, b), thread, print...);
- run.py: the runtime of ``blebridge run --api zerynth``; shims/: the modules scripts import.

Library use, one board per object::

    from blebridge.zerynth import open_ble
    alice = open_ble("sim:alice")
    alice.gap("Alice")
"""
from .ble import ZerynthBle, close_all, open_ble

__all__ = ["ZerynthBle", "open_ble", "close_all"]
