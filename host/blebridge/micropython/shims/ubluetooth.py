"""``ubluetooth``: the old name of ``bluetooth`` (still importable on boards)."""
from bluetooth import *  # noqa: F401,F403
from bluetooth import __all__  # noqa: F401
