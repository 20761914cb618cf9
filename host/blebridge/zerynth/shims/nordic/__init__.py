"""Zerynth's ``nordic`` driver package, served by blebridge (its BLE driver only)."""
from blebridge.zerynth.run import PROVIDED as _PROVIDED, unavailable as _unavailable


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise _unavailable("nordic." + name)
