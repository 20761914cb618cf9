"""aioble's GATT client: ``ClientService``, ``ClientCharacteristic``, ``ClientDescriptor``,
and the ``async for`` discovery over them, on blebridge.ble.gattc.

Notifications and indications: each client characteristic keeps the latest one not yet taken
(NOTIFY_QUEUE_LEN deep, as aioble: a newer one replaces an older one nobody waited for); a
characteristic is found by its value handle once it has been discovered on the connection.
"""
from __future__ import annotations

import asyncio
import struct
from collections import deque
from typing import TYPE_CHECKING, Any, Optional

from .. import protocol as P
from ..ble.gattc import RemoteCharacteristic, RemoteDescriptor, RemoteService
from .core import as_uuid, check_timeout, data_bytes
from .device import DeviceConnection, result_of

if TYPE_CHECKING:
    pass

_FLAG = P.CONSTANTS["flag"]
_FLAG_READ = _FLAG["READ"]
_FLAG_WRITE_NO_RESPONSE = _FLAG["WRITE_NO_RESPONSE"]
_FLAG_WRITE = _FLAG["WRITE"]
_FLAG_NOTIFY = _FLAG["NOTIFY"]
_FLAG_INDICATE = _FLAG["INDICATE"]
#: Client Characteristic Configuration descriptor and its bits (Core spec Vol 3 Part G 3.3.3.3).
CCCD_UUID = 0x2902
CCCD_NOTIFY = 1
CCCD_INDICATE = 2
#: Notifications (indications) kept per characteristic until notified() takes them.
NOTIFY_QUEUE_LEN = 1


class ClientDiscover:
    """``async for item in ...``: the services, characteristics or descriptors found."""

    def __init__(self, connection: DeviceConnection, disc_type: Any, parent: Any,
                 timeout_ms: Optional[int], *args: Any) -> None:
        self._connection = connection
        self._disc_type = disc_type
        self._parent = parent
        self._timeout_s = check_timeout(timeout_ms)
        self._timeout_ms = timeout_ms
        self._args = args
        self._items: Optional[deque] = None

    def __aiter__(self) -> "ClientDiscover":
        return self

    async def __anext__(self) -> Any:
        if self._items is None:
            radio = self._connection._radio
            fut = self._disc_type._start_discovery(self._parent, *self._args)
            found = await result_of(radio, fut, self._timeout_s, f"discover {self._disc_type.__name__}s")
            self._items = deque(found)
        if not self._items:
            raise StopAsyncIteration
        return self._disc_type._from(self._parent, self._items.popleft())


class ClientService:
    """A service of the peer."""

    def __init__(self, connection: DeviceConnection, start_handle: int, end_handle: int, uuid: Any) -> None:
        self.connection = connection
        self._start_handle = start_handle
        self._end_handle = end_handle
        self.uuid = uuid

    def __str__(self) -> str:
        return "Service: {} {} {}".format(self._start_handle, self._end_handle, self.uuid)

    __repr__ = __str__

    @classmethod
    def _from(cls, connection: DeviceConnection, r: RemoteService) -> "ClientService":
        return cls(connection, r.start_handle, r.end_handle, as_uuid(r.uuid))

    @staticmethod
    def _start_discovery(connection: DeviceConnection, uuid: Any = None) -> Any:
        return connection._radio.gattc.discover_services(
            connection._handle("discover services"), None if uuid is None else bytes(uuid))

    async def characteristic(self, uuid: Any, timeout_ms: int = 2000) -> Optional["ClientCharacteristic"]:
        want = as_uuid(uuid)
        result = None
        async for c in self.characteristics(want, timeout_ms):
            if result is None and c.uuid == want:
                result = c
        return result

    def characteristics(self, uuid: Any = None, timeout_ms: int = 2000) -> ClientDiscover:
        return ClientDiscover(self.connection, ClientCharacteristic, self, timeout_ms,
                              None if uuid is None else as_uuid(uuid))


class BaseClientCharacteristic:
    """What client characteristics and descriptors share: read and write."""

    _value_handle: int
    properties: int

    def _connection(self) -> DeviceConnection:
        raise NotImplementedError

    def _check(self, flag: int, what: str) -> None:
        if not self.properties & flag:
            raise ValueError(f"{what}(): {self!r} does not support it (Unsupported)")

    async def read(self, timeout_ms: int = 1000) -> bytes:
        """Read the value from the peer (GattError on an ATT error)."""
        self._check(_FLAG_READ, "read")
        timeout_s = check_timeout(timeout_ms)
        conn = self._connection()
        fut = conn._radio.gattc.read(conn._handle("read"), self._value_handle)
        return await result_of(conn._radio, fut, timeout_s, "read")

    async def write(self, data: Any, response: Optional[bool] = None, timeout_ms: int = 1000) -> None:
        """Write to the peer; response None: with response if that is all the peer offers."""
        self._check(_FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE, "write")
        value = data_bytes(data, "data")
        timeout_s = check_timeout(timeout_ms)
        if response is None:
            p = self.properties
            response = bool(p & _FLAG_WRITE) and not (p & _FLAG_WRITE_NO_RESPONSE)
        conn = self._connection()
        fut = conn._radio.gattc.write(conn._handle("write"), self._value_handle, value, bool(response))
        await result_of(conn._radio, fut, timeout_s, "write")


class ClientCharacteristic(BaseClientCharacteristic):
    """A characteristic of the peer."""

    def __init__(self, service: ClientService, end_handle: int, value_handle: int,
                 properties: int, uuid: Any) -> None:
        self.service = service
        self.connection = service.connection
        self._value_handle = value_handle
        # Descriptors live between the value handle and the end handle.
        self._end_handle = end_handle
        self.properties = properties
        self.uuid = uuid
        self._notify_queue: deque[bytes] = deque((), NOTIFY_QUEUE_LEN)
        self._indicate_queue: deque[bytes] = deque((), NOTIFY_QUEUE_LEN)
        self._register_with_connection()

    def __str__(self) -> str:
        return "Characteristic: {} {} {} {}".format(self._end_handle, self._value_handle,
                                                    self.properties, self.uuid)

    __repr__ = __str__

    @classmethod
    def _from(cls, service: ClientService, r: RemoteCharacteristic) -> "ClientCharacteristic":
        return cls(service, r.end_handle, r.value_handle, r.properties, as_uuid(r.uuid))

    @staticmethod
    def _start_discovery(service: ClientService, uuid: Any = None) -> Any:
        conn = service.connection
        return conn._radio.gattc.discover_characteristics(
            conn._handle("discover characteristics"), service._start_handle, service._end_handle,
            None if uuid is None else bytes(uuid))

    def _connection(self) -> DeviceConnection:
        return self.service.connection

    def _register_with_connection(self) -> None:
        self.connection._characteristics[self._value_handle] = self

    def _on_notify_indicate(self, indicate: bool, data: bytes) -> None:
        """On the board's thread: a notification (indication) arrived."""
        (self._indicate_queue if indicate else self._notify_queue).append(data)

    async def descriptor(self, uuid: Any, timeout_ms: int = 2000) -> Optional["ClientDescriptor"]:
        want = as_uuid(uuid)
        result = None
        async for d in self.descriptors(timeout_ms):
            if result is None and d.uuid == want:
                result = d
        return result

    def descriptors(self, timeout_ms: int = 2000) -> ClientDiscover:
        return ClientDiscover(self.connection, ClientDescriptor, self, timeout_ms)

    async def _notified_indicated(self, queue: deque, timeout_ms: Optional[int], what: str) -> bytes:
        timeout_s = check_timeout(timeout_ms)
        self._register_with_connection()
        conn = self.connection
        if not queue:
            try:
                await conn._radio.wait(lambda: queue, timeout_s, conn)
            except asyncio.TimeoutError:
                raise asyncio.TimeoutError(f"{what}(): nothing within {timeout_ms} ms") from None
        return queue.popleft()

    async def notified(self, timeout_ms: Optional[int] = None) -> bytes:
        """The next notification (at once if one came since the last call)."""
        self._check(_FLAG_NOTIFY, "notified")
        return await self._notified_indicated(self._notify_queue, timeout_ms, "notified")

    async def indicated(self, timeout_ms: Optional[int] = None) -> bytes:
        """The next indication (at once if one came since the last call)."""
        self._check(_FLAG_INDICATE, "indicated")
        return await self._notified_indicated(self._indicate_queue, timeout_ms, "indicated")

    async def subscribe(self, notify: bool = True, indicate: bool = False) -> None:
        """Write the CCCD: notifications and/or indications on (or both off)."""
        self._register_with_connection()
        cccd = await self.descriptor(as_uuid(CCCD_UUID))
        if cccd is None:
            raise ValueError(f"subscribe(): {self!r} has no CCCD (CCCD not found)")
        await cccd.write(struct.pack("<H", CCCD_NOTIFY * bool(notify) + CCCD_INDICATE * bool(indicate)),
                         response=True)


class ClientDescriptor(BaseClientCharacteristic):
    """A descriptor of the peer."""

    def __init__(self, characteristic: ClientCharacteristic, dsc_handle: int, uuid: Any) -> None:
        self.characteristic = characteristic
        self._value_handle = dsc_handle
        self.properties = _FLAG_READ | _FLAG_WRITE
        self.uuid = uuid

    def __str__(self) -> str:
        return "Descriptor: {} {} {}".format(self._value_handle, self.properties, self.uuid)

    __repr__ = __str__

    @classmethod
    def _from(cls, characteristic: ClientCharacteristic, r: RemoteDescriptor) -> "ClientDescriptor":
        return cls(characteristic, r.handle, as_uuid(r.uuid))

    @staticmethod
    def _start_discovery(characteristic: ClientCharacteristic) -> Any:
        conn = characteristic.connection
        first = characteristic._value_handle + 1
        if first > characteristic._end_handle:
            from concurrent.futures import Future
            empty: Future = Future()
            empty.set_result([])
            return empty
        return conn._radio.gattc.discover_descriptors(conn._handle("discover descriptors"), first,
                                                      characteristic._end_handle)

    def _connection(self) -> DeviceConnection:
        return self.characteristic.service.connection
