"""Zerynth's ``wireless`` package, served by blebridge: ble and ble_beacons."""
from blebridge.zerynth.run import PROVIDED as _PROVIDED, unavailable as _unavailable


def __getattr__(name):
    # ``from wireless import wifi``: Zerynth has it, blebridge does not; say so.
    if name.startswith("__"):
        raise AttributeError(name)
    if "wireless." + name not in _PROVIDED["wireless"]:
        raise _unavailable("wireless." + name)
    raise AttributeError(name)
