"""MicroPython's ``aioble``, served by blebridge (blebridge.aioble), on the board of ``bluetooth.BLE()``.

``import aioble`` and ``import aioble.core`` (or any of aioble's submodules) give blebridge's
modules themselves, so state set through one name (``aioble.core.log_level``) is seen by all.
A user's own ``aioble`` earlier on sys.path wins over this one.
"""
import atexit
import sys

import blebridge.aioble as _aioble
from blebridge.aioble import (central, client, core, device, l2cap, peripheral,  # noqa: F401
                              radio, security, server)

for _name in ("central", "client", "core", "device", "l2cap", "peripheral", "security", "server"):
    sys.modules["aioble." + _name] = getattr(_aioble, _name)

# The boards aioble opened end with the script (blebridge run closes bluetooth's itself).
atexit.register(_aioble.close_all)

sys.modules[__name__] = _aioble
