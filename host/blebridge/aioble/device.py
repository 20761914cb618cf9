"""aioble's ``Device``, ``DeviceConnection`` and ``DeviceTimeout``."""
from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Optional

from .. import calls
from ..ble import address as _address
from ..ble.gattc import ConnectionClosed, GattStatusError
from ..errors import BoardError
from .core import (DeviceDisconnectedError, GattError, as_uuid, check_timeout, log_error)

if TYPE_CHECKING:
    from .radio import Radio

ADDR_PUBLIC = 0
ADDR_RANDOM = 1
#: Address types a Device takes (public, random, and the identity types a controller reports).
_ADDR_TYPES = (0, 1, 2, 3)


def _radio_of(radio: Optional["Radio"]) -> "Radio":
    if radio is not None:
        return radio
    from .radio import default
    return default()


async def result_of(radio: "Radio", fut: Any, timeout_s: Optional[float], operation: str) -> Any:
    """The result of a blebridge.ble future, as aioble raises: GattError for a GATT status,
    DeviceDisconnectedError when the connection ended, TimeoutError."""
    try:
        await radio.wait(fut.done, timeout_s)
        return fut.result()
    except asyncio.TimeoutError:
        fut.cancel()
        raise asyncio.TimeoutError(f"{operation}: no answer within {timeout_s * 1000:.0f} ms") from None
    except GattStatusError as exc:
        raise GattError(exc.status, operation) from None
    except ConnectionClosed:
        raise DeviceDisconnectedError(f"{operation}: the connection ended") from None


class DeviceTimeout:
    """``with connection.timeout(ms):`` (or ``async with``): the body is cancelled when the
    time is up (raising ``asyncio.TimeoutError``) or the connection ends (raising
    ``DeviceDisconnectedError``). Either may be None: just the other, or nothing."""

    def __init__(self, connection: Optional["DeviceConnection"], timeout_ms: Optional[int]) -> None:
        self._connection = connection
        self._timeout_s = check_timeout(timeout_ms)
        self._task: Optional[asyncio.Task] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._handle: Optional[asyncio.TimerHandle] = None
        #: Why this context cancelled its task: None, "timeout" or "disconnected".
        self._fired: Optional[str] = None
        #: Inside the body: a timer or disconnection seen after the body ended cancels nothing.
        self._active = False

    def __enter__(self) -> "DeviceTimeout":
        self._task = asyncio.current_task()
        if self._task is None:
            raise RuntimeError("connection.timeout() is used inside a coroutine")
        self._loop = asyncio.get_running_loop()
        self._active = True
        if self._timeout_s:
            self._handle = self._loop.call_later(self._timeout_s, self._fire, "timeout")
        conn = self._connection
        if conn is not None:
            with conn._lock:
                conn._timeouts.append(self)
            if not conn.is_connected():
                self._loop.call_soon(self._fire, "disconnected")
        return self

    def _fire(self, why: str) -> None:
        if self._active and self._fired is None and self._task is not None and not self._task.done():
            self._fired = why
            self._task.cancel()

    def _disconnected(self) -> None:
        """From any thread: the connection ended."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._fire, "disconnected")
            except RuntimeError:
                pass

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self._active = False
        if self._handle is not None:
            self._handle.cancel()
        conn = self._connection
        if conn is not None:
            with conn._lock:
                if self in conn._timeouts:
                    conn._timeouts.remove(self)
        fired, self._fired = self._fired, None
        if fired is None:
            return False
        task = self._task
        if task is not None and hasattr(task, "uncancel"):
            task.uncancel()
        if exc_type is asyncio.CancelledError:
            if fired == "timeout":
                raise asyncio.TimeoutError(f"timed out after {self._timeout_s * 1000:.0f} ms")
            raise DeviceDisconnectedError(f"{conn.device if conn else 'the device'} disconnected")
        return False

    async def __aenter__(self) -> "DeviceTimeout":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)


class Device:
    """A remote device by address: ``Device(addr_type, addr)``; ``addr`` is 6 bytes (most
    significant first, as MicroPython) or text ``"aa:bb:cc:dd:ee:ff"``."""

    def __init__(self, addr_type: int, addr: Any, *, radio: Optional["Radio"] = None) -> None:
        if isinstance(addr_type, bool) or not isinstance(addr_type, int) or addr_type not in _ADDR_TYPES:
            raise ValueError(f"addr_type must be ADDR_PUBLIC (0) or ADDR_RANDOM (1), not {addr_type!r}")
        if isinstance(addr, str):
            raw = _address.parse(addr)
        else:
            try:
                with memoryview(addr) as mv:
                    raw = mv.tobytes()
            except TypeError:
                raise TypeError(f"addr must be 6 bytes or 'aa:bb:cc:dd:ee:ff', not {type(addr).__name__}") from None
            if len(raw) != _address.ADDR_LEN:
                raise ValueError(f"addr must be {_address.ADDR_LEN} bytes, not {len(raw)}")
        self.addr_type = addr_type
        self.addr = raw
        self._radio = radio
        self._connection: Optional["DeviceConnection"] = None

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Device):
            return NotImplemented
        return self.addr_type == other.addr_type and self.addr == other.addr

    def __hash__(self) -> int:
        return hash((self.addr_type, self.addr))

    def __str__(self) -> str:
        return "Device({}, {}{})".format("ADDR_PUBLIC" if self.addr_type == ADDR_PUBLIC else "ADDR_RANDOM",
                                         self.addr_hex(), ", CONNECTED" if self._connection else "")

    __repr__ = __str__

    def addr_hex(self) -> str:
        return self.addr.hex(":")

    async def connect(self, timeout_ms: int = 10000, scan_duration_ms: Optional[int] = None,
                      min_conn_interval_us: Optional[int] = None,
                      max_conn_interval_us: Optional[int] = None) -> "DeviceConnection":
        """Connect (as central); the DeviceConnection, or asyncio.TimeoutError."""
        if self._connection is not None and self._connection.is_connected():
            return self._connection
        timeout_s = check_timeout(timeout_ms)
        if timeout_s is None:
            raise ValueError("timeout_ms must be a number of milliseconds for connect()")
        for name, value in (("scan_duration_ms", scan_duration_ms),
                            ("min_conn_interval_us", min_conn_interval_us),
                            ("max_conn_interval_us", max_conn_interval_us)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive int or None, not {value!r}")
        radio = _radio_of(self._radio)
        self._radio = radio
        radio.ensure_active()
        from .central import cancel_scan
        await cancel_scan(radio)
        key = (self.addr_type, _address.to_wire(self.addr))
        conn = DeviceConnection(self, radio, None)
        with radio.lock:
            if key in radio.connecting:
                raise ValueError(f"a connect to {self.addr_hex()} is already in progress")
            radio.connecting[key] = conn
            failed, stops = radio.connect_failed, radio.stops
        try:
            # The board looks for the device for the whole timeout unless told otherwise.
            scan_ms = scan_duration_ms if scan_duration_ms is not None else int(timeout_ms)
            calls.gap_connect(radio.board, addr_type=self.addr_type, addr=key[1], scan_duration_ms=scan_ms,
                              min_conn_interval_us=min_conn_interval_us,
                              max_conn_interval_us=max_conn_interval_us)
            try:
                await radio.wait(lambda: (conn._conn_handle is not None or radio.connect_failed != failed
                                          or radio.stops != stops), timeout_s)
            except asyncio.TimeoutError:
                try:
                    calls.gap_connect_cancel(radio.board)
                except BoardError:
                    pass
                raise asyncio.TimeoutError(f"connect to {self}: no connection within {timeout_ms} ms") from None
            if radio.stops != stops:
                raise DeviceDisconnectedError(f"connect to {self}: the radio was stopped")
            if conn._conn_handle is None:
                raise asyncio.TimeoutError(f"connect to {self}: the board did not find it to connect")
        except BaseException:
            with radio.lock:
                if radio.connecting.get(key) is conn:
                    del radio.connecting[key]
            if self._connection is conn and conn._conn_handle is None:
                self._connection = None
            raise
        return conn


class DeviceConnection:
    """A GAP connection (from ``Device.connect()`` or ``advertise()``). ``async with`` it to
    disconnect at the end."""

    def __init__(self, device: Device, radio: "Radio", conn_handle: Optional[int]) -> None:
        self.device = device
        device._connection = self
        device._radio = radio
        self._radio = radio
        self._conn_handle = conn_handle
        self.encrypted = False
        self.authenticated = False
        self.bonded = False
        self.key_size: Any = False
        self.mtu: Optional[int] = None
        self._lock = threading.Lock()
        self._timeouts: list[DeviceTimeout] = []
        #: value handle -> ClientCharacteristic, for notifications and indications.
        self._characteristics: dict[int, Any] = {}
        self._security_updates = 0
        self._l2cap_channel: Any = None

    def __repr__(self) -> str:
        return f"<DeviceConnection {self.device} handle={self._conn_handle}>"

    # -- called by the Radio on the board's thread -------------------------------------------------

    def _ended(self) -> None:
        self._conn_handle = None
        if self.device._connection is self:
            self.device._connection = None
        self._cancel_timeouts()

    def _cancel_timeouts(self) -> None:
        with self._lock:
            timeouts = list(self._timeouts)
        for t in timeouts:
            t._disconnected()

    # -- API -------------------------------------------------------------------------------------

    def is_connected(self) -> bool:
        return self._conn_handle is not None

    def timeout(self, timeout_ms: Optional[int]) -> DeviceTimeout:
        return DeviceTimeout(self, timeout_ms)

    async def disconnect(self, timeout_ms: int = 2000) -> None:
        await self.disconnected(timeout_ms, disconnect=True)

    async def disconnected(self, timeout_ms: Optional[int] = None, disconnect: bool = False) -> None:
        timeout_s = check_timeout(timeout_ms)
        handle = self._conn_handle
        if handle is None:
            return
        radio = self._radio
        if disconnect:
            try:
                calls.gap_disconnect(radio.board, conn=handle)
            except BoardError as exc:
                log_error("Disconnect", exc)
        try:
            await radio.wait(lambda: not self.is_connected(), timeout_s)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"{self.device} still connected after {timeout_ms} ms") from None

    def _handle(self, operation: str) -> int:
        handle = self._conn_handle
        if handle is None:
            raise DeviceDisconnectedError(f"{operation}: {self.device} is not connected")
        return handle

    def services(self, uuid: Any = None, timeout_ms: int = 2000) -> Any:
        from .client import ClientDiscover, ClientService
        return ClientDiscover(self, ClientService, self, timeout_ms,
                              None if uuid is None else as_uuid(uuid))

    async def service(self, uuid: Any, timeout_ms: int = 2000) -> Any:
        want = as_uuid(uuid)
        result = None
        async for service in self.services(want, timeout_ms):
            if result is None and service.uuid == want:
                result = service
        return result

    async def exchange_mtu(self, mtu: Optional[int] = None, timeout_ms: int = 1000) -> int:
        if not self.is_connected():
            raise ValueError("Not connected")
        timeout_s = check_timeout(timeout_ms)
        radio = self._radio
        if mtu:
            radio.config(mtu=mtu)
        fut = radio.gattc.exchange_mtu(self._handle("exchange_mtu"))
        self.mtu = await result_of(radio, fut, timeout_s, "exchange_mtu")
        return self.mtu

    async def pair(self, bond: bool = True, le_secure: bool = True, mitm: bool = False,
                   io: int = 3, timeout_ms: int = 20000) -> None:
        from .security import pair
        await pair(self, bond=bond, le_secure=le_secure, mitm=mitm, io=io, timeout_ms=timeout_ms)

    async def l2cap_accept(self, psm: int, mtu: int, timeout_ms: Optional[int] = None) -> Any:
        from .l2cap import accept
        return await accept(self, psm, mtu, timeout_ms)

    async def l2cap_connect(self, psm: int, mtu: int, timeout_ms: int = 1000) -> Any:
        from .l2cap import connect
        return await connect(self, psm, mtu, timeout_ms)

    async def __aenter__(self) -> "DeviceConnection":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.disconnect()
