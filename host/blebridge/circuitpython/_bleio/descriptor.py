"""``_bleio.Descriptor``: local (added to a local characteristic) and remote (discovered)."""
from __future__ import annotations

from typing import Any, Optional

from ... import protocol as P
from ...ble import gatt as ble_gatt
from . import attribute as _attr
from .characteristic import Characteristic, check_max_length, fixed_flag, initial_bytes
from .errors import RoleError, buffer, check_int_min, check_type
from .uuid import UUID

_F = P.CONSTANTS["flag"]


class Descriptor:
    """A descriptor of a characteristic (no constructor: ``add_to_characteristic``, or
    discovery)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("cannot create '_bleio.Descriptor' instances: use add_to_characteristic()")

    @classmethod
    def add_to_characteristic(cls, characteristic: Characteristic, uuid: UUID, *,
                              read_perm: int = _attr.OPEN, write_perm: int = _attr.OPEN,
                              max_length: int = 20, fixed_length: bool = False,
                              initial_value: Any = b"") -> "Descriptor":
        """Create a new Descriptor and add it to ``characteristic``."""
        check_type(characteristic, Characteristic, "characteristic")
        check_type(uuid, UUID, "uuid")
        read_perm = _attr.check_mode(read_perm)
        write_perm = _attr.check_mode(write_perm)
        max_length = check_int_min(max_length, 0, "max_length")
        fixed_length = bool(fixed_length)
        value = initial_bytes(initial_value, max_length, fixed_length, b"")
        check_max_length(max_length, fixed_length)
        if characteristic._service.remote:
            raise RoleError("Can't add a Descriptor to a remote Characteristic")
        flags = ((_F["READ"] if read_perm != _attr.NO_ACCESS else 0)
                 | (_F["WRITE"] if write_perm != _attr.NO_ACCESS else 0)
                 | _attr.flags(read_perm, write_perm) | fixed_flag(fixed_length, max_length))
        self = object.__new__(cls)
        self._characteristic = characteristic
        self._uuid: Optional[UUID] = uuid
        self._max_length = max_length
        self._fixed = fixed_length
        self._handle = 0
        self._gatt: Optional[ble_gatt.Descriptor] = ble_gatt.Descriptor(bytes(uuid), flags, max_length, value)
        characteristic._service._adapter._add_descriptor(characteristic, self)
        return self

    @classmethod
    def _remote_of(cls, characteristic: Characteristic, uuid: UUID, handle: int) -> "Descriptor":
        self = object.__new__(cls)
        self._characteristic = characteristic
        self._uuid = uuid
        self._max_length = 512
        self._fixed = False
        self._handle = handle
        self._gatt = None
        return self

    @property
    def uuid(self) -> Optional[UUID]:
        return self._uuid

    @property
    def characteristic(self) -> Characteristic:
        return self._characteristic

    @property
    def value(self) -> bytearray:
        service = self._characteristic._service
        if service.remote:
            return bytearray(service._adapter._remote_read(service._connection, self._handle))
        return bytearray(service._adapter._local_read(self._gatt))

    @value.setter
    def value(self, value: Any) -> None:
        data = buffer(value, "value")
        service = self._characteristic._service
        if service.remote:
            service._adapter._remote_write(service._connection, self._handle, data, response=True)
            return
        if self._fixed and len(data) != self._max_length:
            raise ValueError("Value length != required fixed length")
        if len(data) > self._max_length:
            raise ValueError("Value length > max_length")
        service._adapter._local_write(self._gatt, data, notify=False)

    def __repr__(self) -> str:
        return f"Descriptor({self._uuid!r})"
