"""``_bleio.Service``: local (added to its adapter's GATT database) and remote (discovered).

A local Service belongs to one board: the adapter of the innermost ``using(adapter)`` block,
else ``_bleio.adapter`` (CircuitPython has one radio; blebridge may drive several).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ...ble import gatt as ble_gatt
from .errors import check_type
from .uuid import UUID

if TYPE_CHECKING:
    from .adapters import Adapter
    from .characteristic import Characteristic
    from .connection import Connection


class Service:
    """A BLE service and its characteristics: ``Service(uuid, *, secondary=False)``."""

    def __init__(self, uuid: UUID, *, secondary: bool = False) -> None:
        check_type(uuid, UUID, "uuid")
        from .adapters import current_adapter
        self._uuid: Optional[UUID] = uuid
        self._secondary = bool(secondary)
        self._remote = False
        self._characteristics: list["Characteristic"] = []
        self._connection: Optional["Connection"] = None
        self._adapter: "Adapter" = current_adapter()
        self._gatt: Optional[ble_gatt.Service] = ble_gatt.Service(bytes(uuid), secondary=self._secondary)
        self._start_handle = self._end_handle = 0
        self._adapter._add_service(self)

    @classmethod
    def _remote_of(cls, connection: "Connection", uuid: UUID, start: int, end: int) -> "Service":
        self = object.__new__(cls)
        self._uuid = uuid
        self._secondary = False
        self._remote = True
        self._characteristics = []
        self._connection = connection
        self._adapter = connection._adapter
        self._gatt = None
        self._start_handle, self._end_handle = start, end
        return self

    @property
    def uuid(self) -> Optional[UUID]:
        return self._uuid

    @property
    def characteristics(self) -> tuple:
        """The characteristics of this service (read-only)."""
        return tuple(self._characteristics)

    @property
    def remote(self) -> bool:
        """True if this is a service provided by a remote device."""
        return self._remote

    @property
    def secondary(self) -> bool:
        return self._secondary

    @property
    def connection(self) -> Any:
        """The Connection of a remote service (None for a local one)."""
        return self._connection

    def __repr__(self) -> str:
        return f"Service({self._uuid!r})"
