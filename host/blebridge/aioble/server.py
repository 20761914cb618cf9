"""aioble's GATT server: ``Service``, ``Characteristic``, ``BufferedCharacteristic``,
``Descriptor``, ``register_services``.

The objects are made before any board is known; ``register_services`` puts them in a board's
local GATT database (blebridge.ble.gatt) and binds each to that board's Radio. Remote writes
arrive with their data (GATTS_WRITE), so a captured write is the value the peer wrote, not
whatever the attribute holds by the time the script looks.

Captured writes (``capture=True``) of all characteristics of a board go into one queue in the
order they arrived, CAPTURE_QUEUE_LIMIT deep (the oldest goes when it is full, as aioble's
deque does), and each ``written()`` takes the oldest write only when it is its own: a write
to another characteristic that came first must be taken first, so writes are seen in the
order the peer made them across characteristics (aioble's shared capture queue).
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional

from .. import calls
from .. import protocol as P
from ..ble import gatt
from ..errors import BoardError
from .core import GattError, as_uuid, check_timeout, data_bytes, log_warn

if TYPE_CHECKING:
    from .device import DeviceConnection
    from .radio import Radio

_FLAG = P.CONSTANTS["flag"]
_FLAG_READ = _FLAG["READ"]
_FLAG_WRITE_NO_RESPONSE = _FLAG["WRITE_NO_RESPONSE"]
_FLAG_WRITE = _FLAG["WRITE"]
_FLAG_NOTIFY = _FLAG["NOTIFY"]
_FLAG_INDICATE = _FLAG["INDICATE"]
#: aioble's capture bit in ``flags`` (local only: never sent to the board, where this bit
#: means something else).
_FLAG_WRITE_CAPTURE = 0x10000

#: Captured writes kept per board before the oldest is dropped (aioble's _WRITE_CAPTURE_QUEUE_LIMIT).
CAPTURE_QUEUE_LIMIT = 10
#: Bytes of an attribute's buffer unless its value or max_len needs more (MP_BLUETOOTH_DEFAULT_ATTR_LEN).
DEFAULT_ATTR_LEN = 20
MAX_ATTR_LEN = P.LIMITS["MAX_ATTR_LEN"]


class Service:
    """A local primary service; characteristics add themselves to it."""

    def __init__(self, uuid: Any) -> None:
        self.uuid = as_uuid(uuid, "Service uuid")
        self.characteristics: list[Characteristic] = []

    def __repr__(self) -> str:
        return f"<Service {self.uuid}>"


class BaseCharacteristic:
    """What characteristics and descriptors share: local value, remote writes."""

    uuid: Any
    flags: int
    _writable: bool
    _capture: bool

    def _init_base(self, initial: Any) -> None:
        self._radio: Optional["Radio"] = None
        self._value_handle: Optional[int] = None
        self._initial = None if initial is None else data_bytes(initial, "initial")
        self._attr: Optional[Any] = None     # the blebridge.ble.gatt attribute once registered
        # Non-capture: set by a remote write until written() returns it.
        self._write_pending = False
        self._write_data: Any = None
        # Capture: the value the last written() returned, shown by read() until the next
        # written() or write() (on a board the script's read follows the write at once).
        self._captured: Optional[bytes] = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uuid} handle={self._value_handle}>"

    # -- local value -----------------------------------------------------------------------------

    def read(self) -> bytes:
        """The value in the local GATT database."""
        if self._captured is not None:
            return self._captured
        if self._radio is None or self._value_handle is None:
            return self._initial or b""
        return bytes(calls.gatts_read(self._radio.board, value_handle=self._value_handle))

    def write(self, data: Any, send_update: bool = False) -> None:
        """Set the local value; ``send_update``: notify/indicate every subscribed client."""
        value = data_bytes(data, "data")
        if len(value) > MAX_ATTR_LEN:
            raise ValueError(f"write(): {len(value)} bytes is more than an attribute holds ({MAX_ATTR_LEN})")
        self._captured = None
        radio, handle = self._radio, self._value_handle
        if radio is None or handle is None:
            self._initial = value
            return
        attr = self._attr
        if attr is not None and len(value) > attr.max_len:
            calls.gatts_set_buffer(radio.board, value_handle=handle, len=len(value), append=attr.append)
            attr.max_len = len(value)
        calls.gatts_write(radio.board, value_handle=handle, data=value, send_update=bool(send_update))

    def on_read(self, connection: Optional["DeviceConnection"]) -> int:
        """Override to decide on each remote read: 0 allows it, an ATT error code refuses it."""
        return 0

    # -- remote writes ---------------------------------------------------------------------------

    def _remote_write(self, connection: Optional["DeviceConnection"], data: bytes) -> None:
        """On the board's thread: a peer wrote ``data``."""
        radio = self._radio
        if radio is None:
            return
        if self._capture:
            queue = radio.capture_queue
            if len(queue) >= CAPTURE_QUEUE_LIMIT:
                log_warn("capture queue full: dropped the oldest write")
            queue.append((connection, data, self))
        else:
            self._write_data = connection
            self._write_pending = True

    async def written(self, timeout_ms: Optional[int] = None) -> Any:
        """Wait for a remote write: the writing DeviceConnection, or (connection, data) with
        capture=True. asyncio.TimeoutError after timeout_ms."""
        if not self._writable:
            raise ValueError(f"written(): {self!r} is not writable (write=True or write_no_response=True)")
        timeout_s = check_timeout(timeout_ms)
        radio = self._radio
        if radio is None:
            raise ValueError(f"written(): {self!r} is not registered (aioble.register_services first)")
        try:
            if self._capture:
                queue = radio.capture_queue
                await radio.wait(lambda: queue and queue[0][2] is self, timeout_s)
                with radio.lock:
                    conn, data, _ = queue.popleft()
                # The next write in the queue may be another characteristic's: wake its waiter.
                radio.signal.notify()
                self._captured = data
                return (conn, data)
            await radio.wait(lambda: self._write_pending, timeout_s)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"written(): no write within {timeout_ms} ms") from None
        self._captured = None
        self._write_pending = False
        data, self._write_data = self._write_data, None
        return data


class Characteristic(BaseCharacteristic):
    """A local characteristic, added to ``service``."""

    def __init__(self, service: Service, uuid: Any, read: bool = False, write: bool = False,
                 write_no_response: bool = False, notify: bool = False, indicate: bool = False,
                 initial: Any = None, capture: bool = False) -> None:
        if not isinstance(service, Service):
            raise TypeError(f"Characteristic(): service must be an aioble.Service, not {type(service).__name__}")
        self.uuid = as_uuid(uuid, "Characteristic uuid")
        flags = 0
        if read:
            flags |= _FLAG_READ
        if write:
            flags |= _FLAG_WRITE
        if write_no_response:
            flags |= _FLAG_WRITE_NO_RESPONSE
        if notify:
            flags |= _FLAG_NOTIFY
        if indicate:
            flags |= _FLAG_INDICATE
        self._writable = bool(write or write_no_response)
        self._capture = bool(capture) and self._writable
        if self._capture:
            flags |= _FLAG_WRITE_CAPTURE
        self.flags = flags
        self.descriptors: list[Descriptor] = []
        self._init_base(initial)
        self._max_len = DEFAULT_ATTR_LEN
        self._append = False
        # Indications in flight: conn handle -> status (None until the peer confirms).
        self._indications: dict[int, Optional[int]] = {}
        service.characteristics.append(self)

    def _check(self, flag: int, what: str) -> None:
        if not self.flags & flag:
            raise ValueError(f"{what}(): {self!r} was not made with {what}=True (Not supported)")

    def _connection_handle(self, connection: Any, what: str) -> int:
        from .device import DeviceConnection
        if not isinstance(connection, DeviceConnection):
            raise TypeError(f"{what}(): connection must be a DeviceConnection, not {type(connection).__name__}")
        if self._radio is None or self._value_handle is None:
            raise ValueError(f"{what}(): {self!r} is not registered (aioble.register_services first)")
        if connection._radio is not self._radio:
            raise ValueError(f"{what}(): the connection is on another board than the characteristic")
        handle = connection._conn_handle
        if handle is None:
            raise ValueError(f"{what}(): Not connected ({connection.device})")
        return handle

    def notify(self, connection: "DeviceConnection", data: Any = None) -> None:
        """Send a notification to ``connection`` (the local value when data is None)."""
        self._check(_FLAG_NOTIFY, "notify")
        conn = self._connection_handle(connection, "notify")
        value = None if data is None else data_bytes(data, "data")
        assert self._radio is not None and self._value_handle is not None
        calls.gatts_notify(self._radio.board, conn=conn, value_handle=self._value_handle, data=value)

    async def indicate(self, connection: "DeviceConnection", data: Any = None, timeout_ms: int = 1000) -> None:
        """Send an indication and wait for the client's confirmation (GattError on a status)."""
        self._check(_FLAG_INDICATE, "indicate")
        conn = self._connection_handle(connection, "indicate")
        timeout_s = check_timeout(timeout_ms)
        if conn in self._indications:
            raise ValueError(f"indicate(): an indication to {connection.device} is in progress")
        value = None if data is None else data_bytes(data, "data")
        radio = self._radio
        assert radio is not None and self._value_handle is not None
        self._indications[conn] = None
        try:
            calls.gatts_indicate(radio.board, conn=conn, value_handle=self._value_handle, data=value)
            try:
                await radio.wait(lambda: self._indications.get(conn) is not None, timeout_s, connection)
            except asyncio.TimeoutError:
                raise asyncio.TimeoutError(f"indicate(): no confirmation within {timeout_ms} ms") from None
            status = self._indications.get(conn)
            if status:
                raise GattError(status, "indicate")
        finally:
            self._indications.pop(conn, None)

    def _indicate_done(self, conn: int, status: int) -> None:
        if conn in self._indications:
            self._indications[conn] = status


class BufferedCharacteristic(Characteristic):
    """A characteristic whose buffer holds ``max_len`` bytes; ``append``: remote writes
    accumulate until the value is read."""

    def __init__(self, *args: Any, max_len: int = 20, append: bool = False, **kwargs: Any) -> None:
        if isinstance(max_len, bool) or not isinstance(max_len, int) or not 1 <= max_len <= MAX_ATTR_LEN:
            raise ValueError(f"BufferedCharacteristic(): max_len must be 1..{MAX_ATTR_LEN}, not {max_len!r}")
        super().__init__(*args, **kwargs)
        self._max_len = max_len
        self._append = bool(append)


class Descriptor(BaseCharacteristic):
    """A local descriptor, added to ``characteristic``."""

    def __init__(self, characteristic: Characteristic, uuid: Any, read: bool = False,
                 write: bool = False, initial: Any = None) -> None:
        if not isinstance(characteristic, Characteristic):
            raise TypeError("Descriptor(): characteristic must be an aioble.Characteristic, "
                            f"not {type(characteristic).__name__}")
        self.uuid = as_uuid(uuid, "Descriptor uuid")
        self.flags = (_FLAG_READ if read else 0) | (_FLAG_WRITE if write else 0)
        self._writable = bool(write)
        self._capture = False
        self._init_base(initial)
        characteristic.descriptors.append(self)


def _attr_len(obj: BaseCharacteristic, max_len: int) -> int:
    return max(max_len, len(obj._initial or b""))


def register_services(radio: "Radio", *services: Service) -> None:
    """Replace the board's local services with ``services``; binds every characteristic and
    descriptor to the board (their initial values are written)."""
    for s in services:
        if not isinstance(s, Service):
            raise TypeError(f"register_services(): expected aioble.Service objects, not {type(s).__name__}")
    radio.ensure_active()
    pairs: list[tuple[Any, BaseCharacteristic]] = []
    defs: list[gatt.Service] = []
    for s in services:
        chars = []
        for c in s.characteristics:
            dscs = []
            for d in c.descriptors:
                gd = gatt.Descriptor(bytes(d.uuid), d.flags, _attr_len(d, DEFAULT_ATTR_LEN), d._initial or b"")
                dscs.append(gd)
                pairs.append((gd, d))
            gc = gatt.Characteristic(bytes(c.uuid), c.flags & ~_FLAG_WRITE_CAPTURE, _attr_len(c, c._max_len),
                                     c._initial or b"", descriptors=dscs, append=c._append)
            chars.append(gc)
            pairs.append((gc, c))
        defs.append(gatt.Service(bytes(s.uuid), chars))

    def send(form: list) -> Any:
        try:
            return calls.gatts_register_services(radio.board, services=form)
        except BoardError as exc:
            if exc.status in (P.STATUS["EINVAL"], P.STATUS["VALUE_TOO_LARGE"]):
                raise ValueError(f"register_services(): the board refused the services: {exc}") from None
            raise

    with radio.lock:
        old = list(radio.attributes.values())
    radio.db.register(defs, send)
    for obj in old:
        obj._radio, obj._value_handle, obj._attr = None, None, None
    attributes = {}
    for g, obj in pairs:
        obj._radio, obj._value_handle, obj._attr = radio, g.handle, g
        obj._initial = None
        obj._captured = None
        attributes[g.handle] = obj
        if getattr(obj, "_append", False):
            calls.gatts_set_buffer(radio.board, value_handle=g.handle, len=g.max_len, append=True)
    with radio.lock:
        radio.attributes = attributes
        radio.capture_queue.clear()
    radio._update_read_requests()
