"""aioble on one board: :class:`Radio`, and which board the module-level functions use.

Every aioble object belongs to one board's Radio: its connections, scan, advertising,
registered characteristics, GATT client (blebridge.ble.gattc) and L2CAP channels
(blebridge.ble.l2cap), all on the board's event session (blebridge.ble.session). Board events
arrive on the board's dispatcher thread; the Radio updates its state there under its lock and
wakes the coroutines waiting on it (core.Signal), on whatever event loops they run.

The default board (what ``aioble.advertise()`` and friends use): the one given to
:func:`use`, else the port in env ``BLEBRIDGE_PORT``, else ``sim:blebridge`` — the board
``bluetooth.BLE()`` opens, so under ``blebridge run --port X`` aioble and ``bluetooth`` share
board X (and its event session).
"""
from __future__ import annotations

import sys
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Optional, Union

from .. import calls
from .. import protocol as P
from ..ble import address as _address
from ..ble import session as ble_session
from ..ble.bonds import SecretStore
from ..ble.gatt import GattDatabase
from ..ble.gattc import GattClient
from ..ble.l2cap import L2cap
from .core import Signal

if TYPE_CHECKING:
    from .central import scan
    from .device import DeviceConnection

#: The key aioble's Radio is attached under in a board's session.
LAYER = "aioble"
DEFAULT_PORT = ble_session.DEFAULT_PORT
default_port = ble_session.default_port
#: Connection handle of a PERIPHERAL_DISCONNECT that ends a connect attempt (none was made).
CONN_HANDLE_NONE = 0xFFFF
_CFG = P.CONSTANTS["config"]


class Radio:
    """aioble on one board. ``Radio(port)`` opens (once per port) and resets the board;
    ``Radio(board)`` uses an open :class:`blebridge.Board`. The module-level functions of
    ``aioble`` exist here as methods, for programs that drive several boards."""

    def __new__(cls, board: Any = None, /, *, port: Optional[str] = None) -> "Radio":
        if board is not None and port is not None:
            raise TypeError("Radio(): give a board or a port, not both")
        if isinstance(board, str):
            board, port = None, board
        return _LAYER.on(board if board is not None else port, cls._make)

    @classmethod
    def _make(cls, session: ble_session.Session) -> "Radio":
        obj = super().__new__(cls)
        obj._setup(session)
        return obj

    def __init__(self, board: Any = None, /, *, port: Optional[str] = None) -> None:
        pass   # set up once, in _setup

    def _setup(self, session: ble_session.Session) -> None:
        self.session = session
        self.board = session.board
        self.lock = threading.RLock()
        self.signal = Signal()
        #: Set when the board is lost: every wait raises it.
        self.lost: Optional[BaseException] = None
        self.closed = False
        #: conn handle -> DeviceConnection, while connected.
        self.connections: dict[int, "DeviceConnection"] = {}
        #: Connections centrals opened to us, not yet returned by advertise().
        self.incoming: deque["DeviceConnection"] = deque()
        #: (addr_type, wire addr) -> DeviceConnection being connected by Device.connect().
        self.connecting: dict[tuple[int, bytes], "DeviceConnection"] = {}
        self.connect_failed = 0
        self.advertising = False
        #: Times the radio was turned off or the board reset (waits that need the radio end).
        self.stops = 0
        self.scanner: Optional["scan"] = None
        #: value handle -> local Characteristic/Descriptor (register_services).
        self.attributes: dict[int, Any] = {}
        #: Captured writes (connection, data, characteristic) in arrival order (server.py).
        self.capture_queue: deque[tuple[Any, bytes, Any]] = deque()
        self.db = GattDatabase()
        self._read_requests = False
        # Subscribed first: the connection objects are up to date (MTU, disconnection) before
        # the GATT client and L2CAP complete anything on the same event.
        self._sub = session.subscribe(self._on_event)
        self.gattc = GattClient(session, self.signal.notify)
        self.l2cap = L2cap(session, self.signal.notify)
        session.subscribe_lost(self._on_lost)

    def __repr__(self) -> str:
        return f"<aioble.Radio on {getattr(self.board, 'spec', self.board)!r}>"

    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop using the board (closing it if this Radio's session opened it)."""
        if self.closed:
            return
        self.closed = True
        self.session.unsubscribe(self._sub)
        self.session.unsubscribe_lost(self._on_lost)
        self.gattc.close()
        self.l2cap.close()
        self.signal.notify()   # waiting coroutines see the Radio closed
        _LAYER.forget(self)

    def check_lost(self) -> None:
        if self.lost is not None:
            raise self.lost
        if self.closed:
            raise RuntimeError(f"{self!r} is closed")

    def _on_lost(self, exc: BaseException) -> None:
        from ..errors import BoardReset
        if isinstance(exc, BoardReset):
            # The board started again from boot: nothing of ours is left on it.
            self._forget()
            self.signal.notify()
            return
        self.lost = exc
        self.gattc.fail_all(exc)
        self.signal.notify()
        self._cancel_all_timeouts()

    # -- the radio -------------------------------------------------------------------------------

    def ensure_active(self) -> None:
        """Turn the radio on if it is off (aioble does before everything)."""
        self.check_lost()
        if not calls.ble_active(self.board, on=None):
            self.secret_store()   # a corrupt bonds file raises here, not inside a pairing
            calls.ble_active(self.board, on=True)
            self._read_requests = False
        self._update_read_requests()

    def stop(self) -> None:
        """Turn the radio off; every scan, advertisement, connection and channel ends."""
        self.check_lost()
        try:
            calls.ble_active(self.board, on=False)
        finally:
            self._forget()
            self.signal.notify()

    def _forget(self) -> None:
        with self.lock:
            self.stops += 1
            conns = list(self.connections.values())
            self.connections.clear()
            self.incoming.clear()
            self.connecting.clear()
            self.advertising = False
            scanner, self.scanner = self.scanner, None
            attrs = list(self.attributes.values())
            self.attributes.clear()
            self.capture_queue.clear()
            self.db.clear()
            self._read_requests = False
        self.session.forget_connections()
        self.l2cap.forget()
        if scanner is not None:
            scanner._done = True
        for attr in attrs:
            attr._radio, attr._value_handle, attr._attr = None, None, None
        for conn in conns:
            conn._ended()

    # -- aioble's module-level functions, on this board ------------------------------------------

    def config(self, *args: Any, **kwargs: Any) -> Any:
        """MicroPython's BLE.config on this board (radio turned on first)."""
        from .configuration import config
        return config(self, *args, **kwargs)

    def scan(self, duration_ms: int, interval_us: Optional[int] = None,
             window_us: Optional[int] = None, active: bool = False) -> "scan":
        """``async with radio.scan(...) as scanner: async for result in scanner:``"""
        from .central import scan
        return scan(duration_ms, interval_us, window_us, active, radio=self)

    async def advertise(self, interval_us: int, *args: Any, **kwargs: Any) -> "DeviceConnection":
        """Advertise until a central connects; see aioble.advertise."""
        from .peripheral import advertise
        return await advertise(self, interval_us, *args, **kwargs)

    def register_services(self, *services: Any) -> None:
        """Put ``services`` in this board's GATT database (replacing what was there)."""
        from .server import register_services
        register_services(self, *services)

    def Device(self, addr_type: int, addr: Any) -> Any:   # noqa: N802 - aioble's class name
        """An aioble.Device that connects from this board."""
        from .device import Device
        return Device(addr_type, addr, radio=self)

    def _update_read_requests(self) -> None:
        """Ask the board for read requests only while a registered attribute has its own
        on_read (each read then waits for the host's answer)."""
        from .server import BaseCharacteristic
        want = any(type(a).on_read is not BaseCharacteristic.on_read for a in self.attributes.values())
        if want != self._read_requests:
            calls.config_set(self.board, key=_CFG["READ_REQUEST"], value=want)
            self._read_requests = want

    # -- waiting ---------------------------------------------------------------------------------

    async def wait(self, predicate: Any, timeout_s: Optional[float] = None,
                   connection: Optional["DeviceConnection"] = None) -> Any:
        """The first true ``predicate()``: TimeoutError after ``timeout_s``; the board's loss
        and (if given) ``connection`` ending raise."""
        def check() -> None:
            self.check_lost()
            if connection is not None and not connection.is_connected():
                from .core import DeviceDisconnectedError
                raise DeviceDisconnectedError(f"{connection.device} disconnected")
        return await self.signal.until(predicate, timeout_s, check)

    def _cancel_all_timeouts(self) -> None:
        with self.lock:
            conns = list(self.connections.values())
        for conn in conns:
            conn._cancel_timeouts()

    # -- bonds -----------------------------------------------------------------------------------

    def secret_store(self) -> SecretStore:
        """The board's bond store (the session's: one per board, shared with `bluetooth`)."""
        return self.session.secret_store()

    # -- events ----------------------------------------------------------------------------------

    def _on_event(self, ev: Any) -> None:
        handler = _HANDLERS.get(ev.code)
        if handler is None:
            return
        try:
            handler(self, ev.typed)
        finally:
            self.signal.notify()

    def _ev_central_connect(self, f: Any) -> None:
        from .device import Device, DeviceConnection
        device = Device(int(f.addr_type), _address.from_wire(f.addr), radio=self)
        conn = DeviceConnection(device, self, int(f.conn))
        with self.lock:
            self.connections[conn._conn_handle] = conn
            self.incoming.append(conn)

    def _ev_peripheral_connect(self, f: Any) -> None:
        key = (int(f.addr_type), bytes(f.addr))
        with self.lock:
            conn = self.connecting.pop(key, None)
            if conn is None:
                # Not asked for by Device.connect (another API on the board): not ours.
                return
            conn._conn_handle = int(f.conn)
            self.connections[conn._conn_handle] = conn

    def _ev_disconnect(self, f: Any) -> None:
        handle = int(f.conn)
        with self.lock:
            if handle == CONN_HANDLE_NONE:
                self.connect_failed += 1
                return
            conn = self.connections.pop(handle, None)
        if conn is not None:
            conn._ended()

    def _ev_scan_result(self, f: Any) -> None:
        scanner = self.scanner
        if scanner is not None:
            scanner._queue.append((int(f.addr_type), _address.from_wire(f.addr), int(f.adv_type),
                                   int(f.rssi), bytes(f.adv_data)))

    def _ev_scan_done(self, f: Any) -> None:
        scanner = self.scanner
        if scanner is not None:
            scanner._done = True

    def _ev_advertise_done(self, f: Any) -> None:
        self.advertising = False

    def _ev_gatts_write(self, f: Any) -> None:
        attr = self.attributes.get(int(f.value_handle))
        if attr is not None:
            attr._remote_write(self.connections.get(int(f.conn)), bytes(f.data))

    def _ev_read_request(self, f: Any) -> None:
        attr = self.attributes.get(int(f.value_handle))
        if attr is None:
            return
        try:
            result = attr.on_read(self.connections.get(int(f.conn)))
        except Exception as exc:
            print(f"aioble: on_read of {attr!r} failed: {exc!r}; the read is allowed", file=sys.stderr)
            result = 0
        self.session.answer(int(f.token), result if isinstance(result, int) else 0)

    def _ev_indicate_done(self, f: Any) -> None:
        attr = self.attributes.get(int(f.value_handle))
        if attr is not None:
            attr._indicate_done(int(f.conn), int(f.status))

    def _ev_notify(self, f: Any, indicate: bool) -> None:
        conn = self.connections.get(int(f.conn))
        if conn is None:
            return
        char = conn._characteristics.get(int(f.value_handle))
        if char is not None:
            char._on_notify_indicate(indicate, bytes(f.data))

    def _ev_mtu(self, f: Any) -> None:
        conn = self.connections.get(int(f.conn))
        if conn is not None:
            conn.mtu = int(f.mtu)

    def _ev_encryption(self, f: Any) -> None:
        conn = self.connections.get(int(f.conn))
        if conn is not None:
            conn.encrypted = bool(f.encrypted)
            conn.authenticated = bool(f.authenticated)
            conn.bonded = bool(f.bonded)
            conn.key_size = int(f.key_size) if f.encrypted else False
            conn._security_updates += 1


_HANDLERS = {
    P.EV_CENTRAL_CONNECT: Radio._ev_central_connect,
    P.EV_PERIPHERAL_CONNECT: Radio._ev_peripheral_connect,
    P.EV_CENTRAL_DISCONNECT: Radio._ev_disconnect,
    P.EV_PERIPHERAL_DISCONNECT: Radio._ev_disconnect,
    P.EV_SCAN_RESULT: Radio._ev_scan_result,
    P.EV_SCAN_DONE: Radio._ev_scan_done,
    P.EV_ADVERTISE_DONE: Radio._ev_advertise_done,
    P.EV_GATTS_WRITE: Radio._ev_gatts_write,
    P.EV_GATTS_READ_REQUEST: Radio._ev_read_request,
    P.EV_GATTS_INDICATE_DONE: Radio._ev_indicate_done,
    P.EV_GATTC_NOTIFY: lambda r, f: r._ev_notify(f, False),
    P.EV_GATTC_INDICATE: lambda r, f: r._ev_notify(f, True),
    P.EV_MTU_EXCHANGED: Radio._ev_mtu,
    P.EV_ENCRYPTION_UPDATE: Radio._ev_encryption,
    # L2CAP and GATT client results: blebridge.ble.l2cap / ble.gattc (they notify the signal).
}


# -- the default board ---------------------------------------------------------------------------

#: aioble's Radio per board, and the default one (the module-level functions').
_LAYER = ble_session.Layer(LAYER, lambda radio: not radio.closed)


def use(board: Union[str, Any, None] = None) -> Radio:
    """Make ``board`` (a port such as ``"sim:alice"``, ``/dev/ttyACM0``, or an open Board) the
    board of the module-level functions; returns its :class:`Radio`. None: the default port."""
    radio = Radio(board)
    _LAYER.set_default(radio)
    return radio


def default() -> Radio:
    """The Radio of the default board, opened on first use."""
    return _LAYER.default(Radio._make)


def close_all() -> None:
    """Close every Radio (and the boards aioble opened)."""
    _LAYER.close_all()

