"""``_bleio.Characteristic``: CircuitPython's property bits and checks over the board's GATT.

A local characteristic is a blebridge.ble.gatt.Characteristic in its adapter's database
(registered lazily, all pending services at once, before the first use that needs handles);
its value lives on the board. A remote one is a value handle on a connection, read and
written with the GATT client (blebridge.ble.gattc).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from ... import protocol as P
from ...ble import gatt as ble_gatt
from . import attribute as _attr
from .errors import RoleError, BluetoothError, buffer, check_int_min, check_type, invalid
from .service import Service
from .uuid import UUID

if TYPE_CHECKING:
    from .descriptor import Descriptor

_F = P.CONSTANTS["flag"]

# CircuitPython's property bits (shared-module/_bleio/Characteristic.h): not the GATT order.
BROADCAST = 1 << 0
INDICATE = 1 << 1
NOTIFY = 1 << 2
READ = 1 << 3
WRITE = 1 << 4
WRITE_NO_RESPONSE = 1 << 5
ALL = BROADCAST | INDICATE | NOTIFY | READ | WRITE | WRITE_NO_RESPONSE

#: CircuitPython property bit -> GATT property (protocol flag).
_TO_GATT = {BROADCAST: _F["BROADCAST"], INDICATE: _F["INDICATE"], NOTIFY: _F["NOTIFY"],
            READ: _F["READ"], WRITE: _F["WRITE"], WRITE_NO_RESPONSE: _F["WRITE_NO_RESPONSE"]}
#: Longest value of a variable / fixed length attribute, bytes (nRF SoftDevice's
#: BLE_GATTS_VAR_ATTR_LEN_MAX / BLE_GATTS_FIX_ATTR_LEN_MAX, which CircuitPython checks).
MAX_LENGTH_VARIABLE = 512
MAX_LENGTH_FIXED = 510
#: The Characteristic User Description descriptor (Bluetooth Assigned Numbers).
USER_DESCRIPTION_UUID = 0x2901
#: The Client Characteristic Configuration descriptor and its bits.
CCCD_UUID = 0x2902
CCCD_NOTIFY, CCCD_INDICATE = 0x0001, 0x0002


def to_gatt(props: int) -> int:
    return sum(g for bit, g in _TO_GATT.items() if props & bit)


def from_gatt(gatt_props: int) -> int:
    return sum(bit for bit, g in _TO_GATT.items() if gatt_props & g)


def check_max_length(max_length: int, fixed_length: bool) -> None:
    limit = MAX_LENGTH_FIXED if fixed_length else MAX_LENGTH_VARIABLE
    if not 0 <= max_length <= limit:
        raise ValueError(f"max_length must be 0-{limit} when fixed_length is {bool(fixed_length)}")


def fixed_flag(fixed_length: bool, max_length: int) -> int:
    """The FIXED_LENGTH flag of a fixed-length attribute. Not for max_length 0: the board
    reads max_len 0 as "its default buffer" (protocol gatts_register_services), which a fixed
    length would make a 20-byte value; an empty variable one is what CircuitPython has."""
    return _F["FIXED_LENGTH"] if fixed_length and max_length > 0 else 0


def initial_bytes(initial_value: Any, max_length: int, fixed_length: bool, default: bytes) -> bytes:
    """CircuitPython's initial value rules: None is zeros (fixed) or ``default``; the length
    must be max_length (fixed) or at most it."""
    if initial_value is None:
        value = bytes(max_length) if fixed_length and max_length > 0 else default
    else:
        value = buffer(initial_value, "initial_value")
    if fixed_length and len(value) != max_length:
        raise ValueError(f"initial_value length must be {max_length}")
    if not fixed_length and len(value) > max_length:
        raise ValueError(f"initial_value length must be <= {max_length}")
    return value


class Characteristic:
    """A characteristic of a local or remote Service (no constructor: ``add_to_service``, or
    ``Connection.discover_remote_services``)."""

    BROADCAST = BROADCAST
    INDICATE = INDICATE
    NOTIFY = NOTIFY
    READ = READ
    WRITE = WRITE
    WRITE_NO_RESPONSE = WRITE_NO_RESPONSE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("cannot create '_bleio.Characteristic' instances: use add_to_service()")

    def _setup(self, service: Service, uuid: Optional[UUID], props: int, max_length: int,
               fixed_length: bool) -> None:
        self._service = service
        self._uuid = uuid
        self._props = props
        self._max_length = max_length
        self._fixed = fixed_length
        self._descriptors: list["Descriptor"] = []
        self._gatt: Optional[ble_gatt.Characteristic] = None
        self._handle = 0          # remote: value handle
        self._end_handle = 0      # remote: last handle of its descriptors
        self._cccd_handle = 0     # remote: its CCCD's handle (0: none)
        self._deinited = False
        #: Local: functions called with each value a peer writes (buffers), on the board's thread.
        self._listeners: tuple[Callable[[bytes, int], Any], ...] = ()

    @classmethod
    def add_to_service(cls, service: Service, uuid: UUID, *, properties: int = 0,
                       read_perm: int = _attr.OPEN, write_perm: int = _attr.OPEN,
                       max_length: int = 20, fixed_length: bool = False,
                       initial_value: Any = None, user_description: Optional[str] = None) -> "Characteristic":
        """Create a new Characteristic and add it to ``service``."""
        check_type(service, Service, "service")
        check_type(uuid, UUID, "uuid")
        if isinstance(properties, bool) or not isinstance(properties, int):
            raise TypeError(f"properties must be of type int, not {type(properties).__name__}")
        if properties & ~ALL:
            raise invalid("properties")
        read_perm = _attr.check_mode(read_perm)
        write_perm = _attr.check_mode(write_perm)
        max_length = check_int_min(max_length, 0, "max_length")
        fixed_length = bool(fixed_length)
        value = initial_bytes(initial_value, max_length, fixed_length, b"")
        if user_description is not None and not isinstance(user_description, (str, bytes, bytearray)):
            raise TypeError(f"can't convert '{type(user_description).__name__}' object to str implicitly")
        check_max_length(max_length, fixed_length)
        if service.remote:
            raise RoleError("Can't add a Characteristic to a remote Service")
        self = object.__new__(cls)
        self._setup(service, uuid, properties, max_length, fixed_length)
        gatt_props = to_gatt(properties)
        if read_perm == _attr.NO_ACCESS:
            gatt_props &= ~_F["READ"]
        if write_perm == _attr.NO_ACCESS:
            gatt_props &= ~(_F["WRITE"] | _F["WRITE_NO_RESPONSE"])
        flags = gatt_props | _attr.flags(read_perm, write_perm) | fixed_flag(fixed_length, max_length)
        self._gatt = ble_gatt.Characteristic(bytes(uuid), flags, max_length, value)
        if user_description is not None:
            text = (user_description.encode("utf-8") if isinstance(user_description, str)
                    else bytes(user_description))
            read_flags = _F["READ"] | _attr.flags(read_perm, _attr.OPEN) if read_perm != _attr.NO_ACCESS else 0
            self._gatt.descriptors.append(ble_gatt.Descriptor(
                UUID(USER_DESCRIPTION_UUID).bytes_le, read_flags, len(text), text))
        service._adapter._add_characteristic(service, self)
        return self

    @classmethod
    def _remote_of(cls, service: Service, uuid: UUID, gatt_props: int, value_handle: int,
                   end_handle: int) -> "Characteristic":
        self = object.__new__(cls)
        self._setup(service, uuid, from_gatt(gatt_props), MAX_LENGTH_VARIABLE, False)
        self._handle, self._end_handle = value_handle, end_handle
        return self

    def _check(self) -> None:
        if self._deinited:
            raise ValueError("Object has been deinitialized and can no longer be used. "
                             "Create a new object.")

    def deinit(self) -> None:
        self._deinited = True

    @property
    def properties(self) -> int:
        self._check()
        return self._props

    @property
    def uuid(self) -> Optional[UUID]:
        self._check()
        return self._uuid

    @property
    def max_length(self) -> int:
        self._check()
        return self._max_length

    @property
    def descriptors(self) -> tuple:
        self._check()
        return tuple(self._descriptors)

    @property
    def service(self) -> Service:
        self._check()
        return self._service

    @property
    def value(self) -> bytearray:
        """The value: a local characteristic's from the board's database, a remote one read
        from the peer."""
        self._check()
        adapter = self._service._adapter
        if self._service.remote:
            return bytearray(adapter._remote_read(self._service._connection, self._handle))
        return bytearray(adapter._local_read(self._gatt))

    @value.setter
    def value(self, value: Any) -> None:
        self._check()
        data = buffer(value, "value")
        adapter = self._service._adapter
        if self._service.remote:
            adapter._remote_write(self._service._connection, self._handle, data,
                                  response=not self._props & WRITE_NO_RESPONSE)
            return
        if self._fixed and len(data) != self._max_length:
            raise ValueError("Value length != required fixed length")
        if len(data) > self._max_length:
            raise ValueError("Value length > max_length")
        adapter._local_write(self._gatt, data, notify=bool(self._props & (NOTIFY | INDICATE)))

    def set_cccd(self, *, notify: bool = False, indicate: bool = False) -> None:
        """Subscribe to (or unsubscribe from) a remote characteristic's notifications and
        indications."""
        self._check()
        if not self._service.remote:
            if not self._props & (NOTIFY | INDICATE):
                raise BluetoothError("No CCCD for this Characteristic")
            raise RoleError("Can't set CCCD on local Characteristic")
        if not self._cccd_handle:
            raise BluetoothError("No CCCD for this Characteristic")
        cccd = (CCCD_NOTIFY if notify else 0) | (CCCD_INDICATE if indicate else 0)
        self._service._adapter._remote_write(self._service._connection, self._cccd_handle,
                                             cccd.to_bytes(2, "little"), response=True)

    def _add_listener(self, fn: Callable[[bytes, int], Any]) -> None:
        self._listeners = (*self._listeners, fn)

    def _remove_listener(self, fn: Callable[[bytes, int], Any]) -> None:
        self._listeners = tuple(f for f in self._listeners if f is not fn)

    def __repr__(self) -> str:
        if self._uuid is None:
            return "<Characteristic with Unregistered UUID>"
        return f"Characteristic({self._uuid!r})"
