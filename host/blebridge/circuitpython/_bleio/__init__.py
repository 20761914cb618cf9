"""CircuitPython's ``_bleio`` module on a blebridge board (docs/circuitpython.md).

``adapter`` is the default board's Adapter (env ``BLEBRIDGE_PORT``, else ``sim:blebridge``),
opened on first use; ``set_adapter`` makes another board's the default (as CircuitPython's
HCI builds allow). Other boards: ``blebridge.circuitpython.adapter_for(port)``.
Names of CircuitPython 5 kept beside the current ones: ``ConnectionError``,
``Connection.attribute``, ``PacketBuffer.packet_size``, ``ScanEntry.matches(all=...)``.
"""
from __future__ import annotations

from typing import Any, Optional

from .adapters import Adapter
from .address import Address
from .attribute import Attribute
from .characteristic import Characteristic
from .characteristic_buffer import CharacteristicBuffer
from .connection import Connection
from .descriptor import Descriptor
from .errors import BluetoothError, ConnectionError, RoleError, SecurityError
from .packet_buffer import PacketBuffer
from .scan_entry import ScanEntry, ScanResults
from .service import Service
from .uuid import UUID


def set_adapter(adapter: Optional[Adapter]) -> None:
    """Make ``adapter`` (an Adapter, or None for the default board's) ``_bleio.adapter``."""
    from . import adapters as _adapter
    if adapter is not None and not isinstance(adapter, Adapter):
        raise TypeError(f"adapter must be of type Adapter, not {type(adapter).__name__}")
    _adapter.set_default(adapter)


def __getattr__(name: str) -> Any:
    if name == "adapter":
        from .adapters import default
        return default()
    raise AttributeError(f"module '_bleio' has no attribute '{name}'")


__all__ = ["Adapter", "Address", "Attribute", "BluetoothError", "Characteristic",
           "CharacteristicBuffer", "Connection", "ConnectionError", "Descriptor", "PacketBuffer",
           "RoleError", "ScanEntry", "ScanResults", "SecurityError", "Service", "UUID",
           "adapter", "set_adapter"]
