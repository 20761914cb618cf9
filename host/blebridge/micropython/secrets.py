"""The host's store of bonding secrets, now API-neutral in blebridge.ble.bonds.

Kept at this path so code importing ``blebridge.micropython.secrets`` goes on working; the
MicroPython layer's part is only when it is used: a ``_IRQ_GET_SECRET``/``_IRQ_SET_SECRET``
handler that returns None (micropython/ble.py).
"""
from __future__ import annotations

from ..ble.bonds import SecretStore, default_dir

__all__ = ["SecretStore", "default_dir"]
