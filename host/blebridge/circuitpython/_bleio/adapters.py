"""``_bleio.Adapter`` (module named adapters: ``_bleio.adapter`` is the default Adapter): one per board, over the board's event session (blebridge.ble.session).

The adapter keeps CircuitPython's object shapes and checks; BLE itself is the API-neutral
layer's: the local GATT database (blebridge.ble.gatt, services registered lazily, all at
once, keeping values), the GATT client (blebridge.ble.gattc), the connection table and the
bond store (blebridge.ble.session). Board events arrive on the board's dispatcher thread; the
adapter updates its state there under ``cond`` and wakes the script's thread waiting on it.

The default adapter (``_bleio.adapter``) is the board at env ``BLEBRIDGE_PORT``, else
``sim:blebridge`` — the board ``bluetooth.BLE()`` and aioble open, so under
``blebridge run --port X`` every API shares board X.
"""
from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any, Callable, Iterator, Optional, Union

from ... import calls
from ... import protocol as P
from ...ble import advertising as _ad
from ...ble import session as ble_session
from ...ble import status as _status
from ...ble.gatt import GattDatabase
from ...ble.gattc import ConnectionClosed, GattClient, GattStatusError
from ...errors import BoardError, BoardReset
from .address import Address
from .connection import INTERVAL_UNIT_MS, Connection
from .errors import (BluetoothError, ConnectionError, SecurityError, buffer, check_float,
                     check_float_non_negative, check_int, check_int_min, check_type)
from .scan_entry import ScanEntry, ScanResults
from .uuid import UUID, of_wire

#: The key the adapter is attached under in a board's session.
LAYER = "circuitpython"
DEFAULT_PORT = ble_session.DEFAULT_PORT
_CFG = P.CONSTANTS["config"]
_S = P.STATUS
_ADV = P.CONSTANTS["adv_type"]
#: Connection handle of a PERIPHERAL_DISCONNECT that ends a connect attempt (none was made).
CONN_HANDLE_NONE = 0xFFFF

# CircuitPython's bounds (shared-bindings/_bleio/Adapter.c), seconds.
ADV_INTERVAL_MIN, ADV_INTERVAL_MAX = 0.02, 10.24
SCAN_INTERVAL_MIN, SCAN_INTERVAL_MAX = 0.0025, 40.959375
#: Longest advertising timeout, s (nRF BLE_GAP_ADV_TIMEOUT_LIMITED_MAX, 18000 x 10 ms); an
#: anonymous advertisement always gets it.
ADV_TIMEOUT_MAX_S = 180
#: Longest scan timeout, s (nRF: 0xFFFF x 10 ms).
SCAN_TIMEOUT_MAX_S = 655.35
#: Shortest non-zero scan timeout, s (one 10 ms unit).
SCAN_TIMEOUT_MIN_S = 0.01
#: Prefix of the default name; the last four hex digits of the address follow.
DEFAULT_NAME_PREFIX = "CIRCUITPY"
#: Bytes of the GAP device name the board keeps (protocol limit); longer names are cut.
MAX_NAME = P.LIMITS["MAX_NAME"]
#: A connection's supervision timeout when the script sets its interval, ms (CircuitPython: 4 s).
SUPERVISION_TIMEOUT_MS = 4000
#: Longest wait for a GATT client operation (read, write, discovery step), s.
GATT_TIMEOUT_S = 30.0
#: Longest wait for pairing to end, s.
PAIR_TIMEOUT_S = 30.0
#: Longest wait for the MTU exchange a new central connection starts, s.
MTU_TIMEOUT_S = 10.0
#: Connection interval bounds, 1.25 ms units (Core spec Vol 4 Part E 7.8.18: 7.5 ms..4 s).
INTERVAL_MIN_UNITS, INTERVAL_MAX_UNITS = 6, 3200
#: Longest wait for the outcome of a connection interval change, s.
INTERVAL_UPDATE_TIMEOUT_S = 10.0
#: Longest wait for the board to confirm a disconnection, s.
DISCONNECT_TIMEOUT_S = 10.0
#: Extra wait beyond a connect's timeout for the board's own answer, s.
CONNECT_MARGIN_S = 5.0
#: The bond store's kind of secret holding a peer's keys (protocol constants.secret_type).
PEER_SEC = P.CONSTANTS["secret_type"]["PEER_SEC"]
#: The board's security configuration, set when the radio is turned on and before pairing.
SECURITY = (("BOND", True), ("MITM", False), ("LE_SECURE", True),
            ("IO", P.CONSTANTS["io"]["NO_INPUT_OUTPUT"]))
#: Largest ATT MTU the adapter asks for, bytes (an attribute's 512 bytes + 3 of header).
MTU_MAX = P.LIMITS["MAX_ATTR_LEN"] + 3


def _board_error(exc: BoardError, operation: str) -> Exception:
    """What CircuitPython's check_nrf_error raises for a board status."""
    s = exc.status
    if s == _S["ENOMEM"]:
        return MemoryError(f"{operation}: the board is out of memory ({exc})")
    if s == _S["ETIMEDOUT"]:
        return TimeoutError(f"{operation}: {exc}")
    if s in (_S["EINVAL"], _S["BAD_ARG_TYPE"], _S["VALUE_TOO_LARGE"], _S["E2BIG"], _S["MALFORMED"]):
        return ValueError(f"Invalid BLE parameter: {operation}: {exc}")
    if s in _status.NOT_CONNECTED:
        return ConnectionError("Not connected")
    if s in (_S["EBUSY"], _S["EALREADY"], _S["EINPROGRESS"], _S["EPERM"], _S["NOT_ACTIVE"]):
        return BluetoothError(f"Invalid state: {operation}: {exc}")
    return BluetoothError(f"{operation}: {exc}")


def _gatt_error(exc: BaseException, operation: str) -> BaseException:
    """What CircuitPython's check_gatt_status raises (or ConnectionError for a closed link)."""
    if isinstance(exc, GattStatusError):
        if exc.status == P.CONSTANTS["att_error"]["INSUFFICIENT_AUTHENTICATION"]:
            return SecurityError("Insufficient authentication")
        if exc.status == P.CONSTANTS["att_error"]["INSUFFICIENT_ENCRYPTION"]:
            return SecurityError("Insufficient encryption")
        return BluetoothError(f"Unknown gatt error: 0x{exc.status:04x} ({operation})")
    if isinstance(exc, ConnectionClosed):
        return ConnectionError("Not connected")
    if isinstance(exc, BoardError):
        return _board_error(exc, operation)
    return exc


class Adapter:
    """The BLE adapter of one board. ``_bleio.adapter`` is the default board's; more boards:
    ``blebridge.circuitpython.adapter_for(port)``. Not constructible, as on boards with
    native BLE."""

    def __init__(self, *, uart: Any = None, rts: Any = None, cts: Any = None) -> None:
        raise NotImplementedError("Cannot create a new Adapter; use _bleio.adapter;")

    @classmethod
    def _make(cls, session: ble_session.Session) -> "Adapter":
        self = object.__new__(cls)
        self._setup(session)
        return self

    def _setup(self, session: ble_session.Session) -> None:
        self.session = session
        self.board = session.board
        self.cond = threading.Condition(threading.RLock())
        self._lost: Optional[BaseException] = None
        #: conn handle -> Connection, while open.
        self._connections: dict[int, Connection] = {}
        #: (addr_type, wire addr) of the connect in progress (one at a time), and the
        #: Connection its PERIPHERAL_CONNECT made.
        self._connecting: Optional[tuple[int, bytes]] = None
        self._connected_to: Optional[Connection] = None
        self._connect_failed = 0
        #: Connect attempts cancelled here whose end (PERIPHERAL_DISCONNECT, conn none) is still
        #: to come: it fails no later attempt.
        self._stale_connect_ends = 0
        self._advertising = False
        self._anonymous = False
        self._scan: Optional[ScanResults] = None
        #: SCAN_DONE events still to come for scans stopped here: they end no later scan.
        self._stale_scan_dones = 0
        #: Guards the local GATT model (services, database, dirty) and its registration, which
        #: calls the board: not the event condition, so events are dispatched meanwhile.
        self._gatt_lock = threading.RLock()
        self._services: list[Any] = []        # local Service objects, in creation order
        self._db = GattDatabase()
        self._dirty = False
        #: id(ble.gatt attribute) -> the local Characteristic with listeners (peer writes).
        self._local_chars: dict[int, Any] = {}
        self._sub = session.subscribe(self._on_event)
        self.gattc = GattClient(session)
        session.subscribe_lost(self._on_lost)
        # As CircuitPython enables the radio when _bleio is imported.
        self._enable()
        self._set_default_name()

    def __repr__(self) -> str:
        return f"<Adapter on {getattr(self.board, 'spec', self.board)!r}>"

    # -- lifetime --------------------------------------------------------------------------------

    def _enable(self) -> None:
        self._check_lost()
        if not calls.ble_active(self.board, on=None):
            self.session.secret_store()   # a corrupt bonds file raises here, not in a pairing
            calls.ble_active(self.board, on=True)
        caps = getattr(getattr(self.board, "info", None), "caps", None) or {}
        mtu = min(int(caps.get("max_mtu") or MTU_MAX), MTU_MAX)
        calls.config_set(self.board, key=_CFG["MTU"], value=mtu)
        # CircuitPython's security, whichever side starts a pairing: bond, Just Works, LE
        # Secure Connections (the nRF port's pairing parameters; _bleio has no IO settings).
        for key, value in SECURITY:
            calls.config_set(self.board, key=_CFG[key], value=value)

    def _set_default_name(self) -> None:
        addr = self.address.address_bytes
        self.name = f"{DEFAULT_NAME_PREFIX}{addr[1]:02x}{addr[0]:02x}"

    def close(self) -> None:
        """Stop using the board (closing it if this adapter's session opened it)."""
        with self.cond:
            if self._sub is None:
                return
            sub, self._sub = self._sub, None
        self.session.unsubscribe(sub)
        self.session.unsubscribe_lost(self._on_lost)
        self.gattc.close()
        _LAYER.forget(self)

    def _check_lost(self) -> None:
        if self._lost is not None:
            raise self._lost

    def _on_lost(self, exc: BaseException) -> None:
        if isinstance(exc, BoardReset):
            self._forget()
            return
        with self.cond:
            self._lost = exc
            # The board is gone, and its connections with it.
            for conn in self._connections.values():
                conn._connected = False
            self._connections.clear()
            self.cond.notify_all()
        self.gattc.fail_all(exc)
        scan = self._scan
        if scan is not None:
            scan._finish()

    def _forget(self) -> None:
        """The radio went off or the board restarted: nothing of ours is left on it."""
        with self.cond:
            conns = list(self._connections.values())
            self._connections.clear()
            self._advertising = False
            scan, self._scan = self._scan, None
            self._stale_scan_dones = 0
            for c in conns:
                c._connected = False
            self.cond.notify_all()
        with self._gatt_lock:
            self._db.clear()
            self._dirty = bool(self._services)
        self.session.forget_connections()
        if scan is not None:
            scan._finish()

    def _call(self, fn: Any, operation: str, **kwargs: Any) -> Any:
        """A board call; board statuses become CircuitPython's exceptions."""
        self._check_lost()
        try:
            return fn(self.board, **kwargs)
        except BoardError as exc:
            raise _board_error(exc, operation) from None

    # -- adapter state ---------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether the board's radio is on."""
        return bool(self._call(calls.ble_active, "enabled", on=None))

    @enabled.setter
    def enabled(self, value: bool) -> None:
        on = bool(value)
        if on == self.enabled:
            return
        if on:
            self._enable()
            return
        self._call(calls.ble_active, "enabled", on=False)
        self._forget()

    @property
    def address(self) -> Address:
        """The board's radio address."""
        addr_type, addr = self._call(calls.config_get, "address", key=_CFG["MAC"])
        return Address.of_wire(int(addr_type), bytes(addr))

    @address.setter
    def address(self, value: Address) -> None:
        check_type(value, Address, "address")
        try:
            self._call(calls.config_set, "address", key=_CFG["MAC"], value=value.address_bytes)
        except (ValueError, BluetoothError):
            raise BluetoothError("Could not set address") from None

    @property
    def name(self) -> str:
        """The GAP device name peers read once connected."""
        value = self._call(calls.config_get, "name", key=_CFG["GAP_NAME"])
        return value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")

    @name.setter
    def name(self, value: str) -> None:
        # MicroPython's mp_obj_str_get_str: a str, or bytes taken as they are.
        if isinstance(value, (bytes, bytearray)):
            raw = bytes(value)[:MAX_NAME]
        elif isinstance(value, str):
            raw = value.encode("utf-8")[:MAX_NAME]
        else:
            raise TypeError(f"can't convert '{type(value).__name__}' object to str implicitly")
        self._call(calls.config_set, "name", key=_CFG["GAP_NAME"], value=raw.decode("utf-8", "ignore"))

    @property
    def advertising(self) -> bool:
        return self._advertising

    @property
    def connected(self) -> bool:
        return bool(self._connections)

    @property
    def connections(self) -> tuple:
        """The open connections, either side (the same Connection object each time)."""
        with self.cond:
            return tuple(self._connections.values())

    def _ext_adv(self) -> bool:
        caps = getattr(getattr(self.board, "info", None), "caps", None) or {}
        return bool(caps.get("ext_adv"))

    # -- advertising -----------------------------------------------------------------------------

    def start_advertising(self, data: Any, *, scan_response: Any = None, connectable: bool = True,
                          anonymous: bool = False, timeout: int = 0, interval: float = 0.1,
                          tx_power: int = 0, directed_to: Optional[Address] = None) -> None:
        """Advertise ``data`` until stop_advertising, the timeout (s), or (connectable) a
        connection. Over 31 bytes: an extended advertisement."""
        adv = buffer(data, "data")
        resp = b"" if scan_response is None else buffer(scan_response, "scan_response")
        interval = check_float(interval, "interval")
        if not ADV_INTERVAL_MIN <= interval <= ADV_INTERVAL_MAX:
            raise ValueError(f"interval must be in range {ADV_INTERVAL_MIN}-{ADV_INTERVAL_MAX}")
        connectable, anonymous = bool(connectable), bool(anonymous)
        timeout = check_int_min(timeout, 0, "timeout")
        tx_power = check_int(tx_power, "tx_power")
        if len(adv) > _ad.LEGACY_MAX and connectable and resp:
            raise BluetoothError("Cannot have scan responses for extended, connectable advertisements.")
        if directed_to is not None:
            if not connectable:
                raise BluetoothError("Only connectable advertisements can be directed")
            check_type(directed_to, Address, "directed_to")
        if self._advertising:
            raise BluetoothError("Already advertising.")
        for what in (adv, resp):
            if len(what) > _ad.EXTENDED_MAX:
                raise ValueError("Data too large for advertisement packet")
        extended = len(adv) > _ad.LEGACY_MAX or len(resp) > _ad.LEGACY_MAX
        if extended and resp:
            raise BluetoothError("Extended advertisements with scan response not supported.")
        if adv and directed_to is not None:
            raise BluetoothError("Data not supported with directed advertising")
        if anonymous:
            timeout = ADV_TIMEOUT_MAX_S
        elif timeout > ADV_TIMEOUT_MAX_S:
            raise BluetoothError(f"Timeout is too long: Maximum timeout length is {ADV_TIMEOUT_MAX_S} seconds")
        if extended and not self._ext_adv():
            raise BluetoothError(
                f"Extended advertising (data over {_ad.LEGACY_MAX} bytes) is not supported by "
                f"board {getattr(self.board, 'spec', '?')}: its handshake says ext_adv is false")
        if extended:
            scannable = not connectable and bool(resp)
        else:
            scannable = directed_to is None and (connectable or bool(resp))
        self._sync_gatt()
        self._set_anonymous(anonymous)
        peer_type = peer_addr = None
        if directed_to is not None:
            peer_type, peer_addr = directed_to.wire_type, directed_to.address_bytes
        self._call(calls.gap_advertise_start, "start_advertising",
                   interval_us=round(interval * 1_000_000), adv_data=adv, resp_data=resp,
                   connectable=connectable, scannable=scannable, extended=extended,
                   timeout_ms=timeout * 1000, tx_power=tx_power, peer_addr_type=peer_type,
                   peer_addr=peer_addr)
        self._advertising = True

    def _set_anonymous(self, anonymous: bool) -> None:
        """Advertise from a resolvable private address (anonymous) or the board's own."""
        if anonymous == self._anonymous:
            return
        mode = P.CONSTANTS["addr_mode"]["RPA" if anonymous else "PUBLIC"]
        if not anonymous:
            caps_type = getattr(getattr(self.board, "info", None), "addr_type", 0)
            mode = P.CONSTANTS["addr_mode"]["RANDOM"] if caps_type else mode
        self._call(calls.config_set, "anonymous", key=_CFG["ADDR_MODE"], value=mode)
        self._anonymous = anonymous

    def stop_advertising(self) -> None:
        """Stop advertising (nothing if not advertising)."""
        self._advertising = False
        self._check_lost()
        try:
            calls.gap_advertise_stop(self.board)
        except BoardError as exc:
            if exc.status not in _status.NOTHING_TO_STOP and exc.status != _S["NOT_ACTIVE"]:
                raise _board_error(exc, "stop_advertising") from None

    # -- scanning --------------------------------------------------------------------------------

    def start_scan(self, prefixes: Any = b"", *, buffer_size: int = 512, extended: bool = False,
                   timeout: Optional[float] = None, interval: float = 0.1, window: float = 0.1,
                   minimum_rssi: int = -80, active: bool = True) -> ScanResults:
        """Scan; the ScanResults iterator of the entries that pass the filters."""
        t = 0.0 if timeout is None else check_float_non_negative(timeout, "timeout")
        interval = check_float(interval, "interval")
        if not SCAN_INTERVAL_MIN <= interval <= SCAN_INTERVAL_MAX:
            raise ValueError(f"interval must be in range {SCAN_INTERVAL_MIN}-{SCAN_INTERVAL_MAX}")
        if t != 0.0 and t < interval:
            raise ValueError("non-zero timeout must be >= interval")
        window = check_float(window, "window")
        if window > interval:
            raise ValueError("window must be <= interval")
        prefix_bytes = b"" if prefixes is None else buffer(prefixes, "prefixes")
        buffer_size = check_int_min(buffer_size, 1, "buffer_size")
        minimum_rssi = check_int(minimum_rssi, "minimum_rssi")
        with self.cond:
            if self._scan is not None and not self._scan.done:
                raise BluetoothError("Scan already in progress. Stop with stop_scan.")
        if t > SCAN_TIMEOUT_MAX_S:
            raise ValueError("timeout must be < 655.35 secs")
        if 0 < t < SCAN_TIMEOUT_MIN_S:
            raise ValueError("non-zero timeout must be > 0.01")
        if extended and not self._ext_adv():
            raise BluetoothError(
                f"Extended scanning is not supported by board {getattr(self.board, 'spec', '?')}: "
                "its handshake says ext_adv is false")
        results = ScanResults._of(buffer_size, prefix_bytes, minimum_rssi, lambda: self._lost)
        with self.cond:
            self._scan = results
        try:
            self._call(calls.gap_scan_start, "start_scan", duration_ms=round(t * 1000),
                       interval_us=round(interval * 1_000_000), window_us=round(window * 1_000_000),
                       active=bool(active), filter_duplicates=False, rssi_min=None, prefix=None)
        except BaseException:
            with self.cond:
                if self._scan is results:
                    self._scan = None
            results._finish()
            raise
        return results

    def stop_scan(self) -> None:
        """Stop the scan; its iterator returns what it buffered, then ends."""
        with self.cond:
            scan, self._scan = self._scan, None
            if scan is not None and self._lost is None:
                # Its SCAN_DONE has not been dispatched yet (that would have cleared _scan):
                # it follows the stop, or the end the board found first, and ends no later scan.
                self._stale_scan_dones += 1
        if scan is None:
            return
        scan._finish()
        if self._lost is not None:
            return
        try:
            calls.gap_scan_stop(self.board)
        except BoardError as exc:
            if exc.status == _S["NOT_ACTIVE"]:
                with self.cond:
                    self._stale_scan_dones = 0   # radio off: no SCAN_DONE comes
            elif exc.status not in _status.NOTHING_TO_STOP:
                raise _board_error(exc, "stop_scan") from None

    # -- connecting ------------------------------------------------------------------------------

    def connect(self, address: Address, *, timeout: float) -> Connection:
        """Connect (as central) to ``address`` within ``timeout`` seconds."""
        check_type(address, Address, "address")
        t = check_float_non_negative(timeout, "timeout")
        if self._scan is not None:
            self.stop_scan()   # the board scans for the peer itself
        self._sync_gatt()      # the peer may discover our services once connected
        key = (address.wire_type, address.address_bytes)
        with self.cond:
            if self._connecting is not None:
                raise BluetoothError("Invalid state: a connect is already in progress")
            self._connecting = key
            self._connected_to = None
            failed = self._connect_failed
        try:
            self._call(calls.gap_connect, "connect", addr_type=key[0], addr=key[1],
                       scan_duration_ms=max(1, round(t * 1000)))
            deadline = time.monotonic() + t + CONNECT_MARGIN_S
            with self.cond:
                while self._connected_to is None and self._connect_failed == failed:
                    self._check_lost()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.cond.wait(min(left, 0.5))
                conn = self._connected_to
        finally:
            with self.cond:
                self._connecting = None
                self._connected_to = None
        if conn is None:
            with self.cond:
                ended = self._connect_failed != failed
            if not ended:
                try:
                    calls.gap_connect_cancel(self.board)
                except BoardError:
                    pass
                else:
                    with self.cond:
                        # The cancel's PERIPHERAL_DISCONNECT (conn none) is still to come.
                        self._stale_connect_ends += 1
            raise BluetoothError("Failed to connect: timeout")
        # As CircuitPython does after connecting: ask for the largest ATT MTU.
        try:
            self.gattc.exchange_mtu(conn._handle).result(MTU_TIMEOUT_S)
        except (FutureTimeout, GattStatusError, ConnectionClosed, BoardError):
            pass
        self._encrypt_if_bonded(conn)
        return conn

    def _encrypt_if_bonded(self, conn: Connection) -> None:
        """As CircuitPython's central does with a bonded peer: start encrypting the link with
        the bond's keys, without waiting (``paired`` turns True when it is done). The bond
        store names a peer by its address type byte and address (blebridge.ble.bonds)."""
        key = bytes([conn._address.wire_type]) + conn._address.address_bytes
        if self.session.stored_secret(PEER_SEC, 0, key) is None:
            return
        fut = calls.gap_pair_nowait(self.board, conn=conn._handle)
        fut.add_done_callback(lambda f: f.exception())   # a failure leaves the link as it is

    def _disconnect(self, conn: Connection) -> None:
        try:
            self._call(calls.gap_disconnect, "disconnect", conn=conn._handle)
        except ConnectionError:
            return
        deadline = time.monotonic() + DISCONNECT_TIMEOUT_S
        with self.cond:
            while conn._connected and self._lost is None and time.monotonic() < deadline:
                self.cond.wait(0.5)

    def _set_interval(self, conn: Connection, interval_ms: float) -> None:
        # Whole 1.25 ms units, cut as CircuitPython cuts (uint16_t)(interval / 1.25).
        units = int(interval_ms / INTERVAL_UNIT_MS)
        if not INTERVAL_MIN_UNITS <= units <= INTERVAL_MAX_UNITS:
            # What the SoftDevice answers (NRF_ERROR_INVALID_PARAM), before asking the board.
            raise ValueError(f"Invalid BLE parameter: connection_interval must be "
                             f"{INTERVAL_MIN_UNITS * INTERVAL_UNIT_MS}-{INTERVAL_MAX_UNITS * INTERVAL_UNIT_MS:g} ms")
        us = round(units * INTERVAL_UNIT_MS * 1000)
        with self.cond:
            conn._interval_updating = True
        try:
            self._call(calls.gap_conn_update, "connection_interval", conn=conn._handle,
                       min_interval_us=us, max_interval_us=us, latency=0,
                       supervision_timeout_ms=SUPERVISION_TIMEOUT_MS)
        except BaseException:
            with self.cond:
                conn._interval_updating = False
            raise

    def _wait_interval(self, conn: Connection) -> None:
        """Wait (at most INTERVAL_UPDATE_TIMEOUT_S) for the outcome of an interval change."""
        deadline = time.monotonic() + INTERVAL_UPDATE_TIMEOUT_S
        with self.cond:
            while conn._interval_updating and conn._connected and self._lost is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    conn._interval_updating = False   # the peer never answered: as it was
                    break
                self.cond.wait(min(left, 0.5))

    def _pair(self, conn: Connection) -> None:
        c = self.session.connection(conn._handle)
        if c is not None and c.encrypted:
            return
        for key, value in SECURITY:
            self._call(calls.config_set, "pair", key=_CFG[key], value=value)
        with self.cond:
            updates = conn._security_updates
        self._check_lost()
        try:
            calls.gap_pair(self.board, conn=conn._handle)
        except BoardError as exc:
            # A pairing already under way (connect's re-encryption with a bond): wait for it.
            if exc.status not in (_S["EALREADY"], _S["EBUSY"], _S["EINPROGRESS"]):
                raise _board_error(exc, "pair") from None
        deadline = time.monotonic() + PAIR_TIMEOUT_S
        with self.cond:
            while True:
                self._check_lost()
                c = self.session.connection(conn._handle)
                if c is not None and c.encrypted:
                    return
                if not conn._connected:
                    raise ConnectionError("Not connected")
                if conn._security_updates != updates:
                    raise SecurityError("Unspecified issue. The pairing request on the other "
                                        "device may have been declined or ignored.")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SecurityError(f"pair: the link was not encrypted within {PAIR_TIMEOUT_S:g} s")
                self.cond.wait(min(left, 0.5))

    def erase_bonding(self) -> None:
        """Erase every bond: the board's and the host's store of its secrets."""
        self._call(calls.sec_erase_bonds, "erase_bonding")
        self.session.secret_store().clear()

    # -- the local GATT database ------------------------------------------------------------------

    def _add_service(self, service: Any) -> None:
        with self._gatt_lock:
            self._services.append(service)
            self._dirty = True

    def _add_characteristic(self, service: Any, char: Any) -> None:
        with self._gatt_lock:
            service._gatt.characteristics.append(char._gatt)
            service._characteristics.append(char)
            self._local_chars[id(char._gatt)] = char
            self._dirty = True

    def _add_descriptor(self, char: Any, dsc: Any) -> None:
        with self._gatt_lock:
            char._gatt.descriptors.append(dsc._gatt)
            char._descriptors.append(dsc)
            self._dirty = True

    def _sync_gatt(self) -> None:
        """Register the services added since the last registration (all at once)."""
        with self._gatt_lock:
            if not self._dirty:
                return
            services = [s._gatt for s in self._services]

            def send(wire: list) -> Any:
                return self._call(calls.gatts_register_services, "register services", services=wire)

            def read_value(handle: int) -> bytes:
                return bytes(self._call(calls.gatts_read, "read value", value_handle=handle))

            self._db.replace(services, send, read_value)
            self._dirty = False

    def _local_read(self, attr: Any) -> bytes:
        self._sync_gatt()
        return bytes(self._call(calls.gatts_read, "value", value_handle=attr.handle))

    def _local_write(self, attr: Any, data: bytes, notify: bool) -> None:
        self._sync_gatt()
        self._call(calls.gatts_write, "value", value_handle=attr.handle, data=data, send_update=notify)

    # -- the GATT client -------------------------------------------------------------------------

    def _wait(self, fut: Future, operation: str, timeout_s: float = GATT_TIMEOUT_S) -> Any:
        try:
            return fut.result(timeout_s)
        except FutureTimeout:
            raise TimeoutError(f"{operation}: no answer within {timeout_s:g} s") from None
        except BaseException as exc:
            raise _gatt_error(exc, operation) from None

    @staticmethod
    def _check_connected(conn: Connection) -> None:
        """CircuitPython's bleio_check_connected, before a GATT client operation."""
        if not conn._connected:
            raise ConnectionError("Not connected")

    def _remote_read(self, conn: Connection, handle: int) -> bytes:
        self._check_connected(conn)
        return self._wait(self.gattc.read(conn._handle, handle), "read")

    def _remote_write_start(self, conn: Connection, handle: int, data: bytes, response: bool) -> Future:
        self._check_connected(conn)
        return self.gattc.write(conn._handle, handle, data, response)

    def _wait_write(self, fut: Future, timeout_s: float) -> None:
        self._wait(fut, "write", timeout_s)

    def _remote_write(self, conn: Connection, handle: int, data: bytes, response: bool) -> None:
        self._wait(self._remote_write_start(conn, handle, data, response), "write")

    def _discover(self, conn: Connection, uuids: Optional[list]) -> tuple:
        from .characteristic import CCCD_UUID, Characteristic
        from .descriptor import Descriptor
        from .service import Service
        h = conn._handle
        if uuids is None:
            found = self._wait(self.gattc.discover_services(h), "discover services")
        else:
            found = []
            for u in uuids:
                found += self._wait(self.gattc.discover_services(h, bytes(u)), "discover services")
        services = []
        for rs in found:
            service = Service._remote_of(conn, of_wire(rs.uuid), rs.start_handle, rs.end_handle)
            chars = self._wait(self.gattc.discover_characteristics(h, rs.start_handle, rs.end_handle),
                               "discover characteristics")
            for rc in chars:
                char = Characteristic._remote_of(service, of_wire(rc.uuid), rc.properties,
                                                 rc.value_handle, rc.end_handle)
                if rc.end_handle > rc.value_handle:
                    dscs = self._wait(self.gattc.discover_descriptors(h, rc.value_handle + 1, rc.end_handle),
                                      "discover descriptors")
                    for rd in dscs:
                        dsc = Descriptor._remote_of(char, of_wire(rd.uuid), rd.handle)
                        char._descriptors.append(dsc)
                        if bytes(rd.uuid) == UUID(CCCD_UUID).bytes_le:
                            char._cccd_handle = rd.handle
                service._characteristics.append(char)
            services.append(service)
        return tuple(services)

    # -- events (the board's dispatcher thread) --------------------------------------------------

    def _on_event(self, ev: Any) -> None:
        handler = _HANDLERS.get(ev.code)
        if handler is None:
            return
        with self.cond:
            handler(self, ev.typed)
            self.cond.notify_all()

    def _ev_central_connect(self, f: Any) -> None:
        conn = Connection._of(self, int(f.conn), Address.of_wire(int(f.addr_type), bytes(f.addr)), False)
        self._connections[conn._handle] = conn
        # A connection ends connectable advertising (as on CircuitPython).
        self._advertising = False

    def _ev_peripheral_connect(self, f: Any) -> None:
        conn = Connection._of(self, int(f.conn), Address.of_wire(int(f.addr_type), bytes(f.addr)), True)
        self._connections[conn._handle] = conn
        if self._connecting is not None:   # one connect at a time: this is its connection
            self._connected_to = conn

    def _ev_disconnect(self, f: Any) -> None:
        handle = int(f.conn)
        if handle == CONN_HANDLE_NONE:
            if self._stale_connect_ends:
                self._stale_connect_ends -= 1
            else:
                self._connect_failed += 1
            return
        conn = self._connections.pop(handle, None)
        if conn is not None:
            conn._connected = False

    def _ev_scan_result(self, f: Any) -> None:
        scan = self._scan
        if scan is None:
            return
        adv_type = int(f.adv_type)
        entry = ScanEntry._of(Address.of_wire(int(f.addr_type), bytes(f.addr)), bytes(f.adv_data),
                              int(f.rssi), adv_type in (_ADV["ADV_IND"], _ADV["ADV_DIRECT_IND"], _ADV["EXT_ADV"]),
                              adv_type == _ADV["SCAN_RSP"])
        scan._append(entry)

    def _ev_scan_done(self, f: Any) -> None:
        if self._stale_scan_dones:
            self._stale_scan_dones -= 1
            return
        scan, self._scan = self._scan, None
        if scan is not None:
            scan._finish()

    def _ev_advertise_done(self, f: Any) -> None:
        # Only a timeout (reason 0): the end by a connection is CENTRAL_CONNECT's to tell, and
        # its ADVERTISE_DONE may come after the script advertised again.
        if int(f.reason) == 0:
            self._advertising = False

    def _ev_gatts_write(self, f: Any) -> None:
        attr = self._db.attribute(int(f.value_handle))
        char = self._local_chars.get(id(attr)) if attr is not None else None
        if char is not None:
            data, conn = bytes(f.data), int(f.conn)
            for fn in char._listeners:
                fn(data, conn)

    def _ev_notify(self, f: Any) -> None:
        conn = self._connections.get(int(f.conn))
        if conn is None:
            return
        fns = conn._listeners.get(int(f.value_handle))
        if fns:
            data = bytes(f.data)
            for fn in fns:
                fn(data, conn._handle)

    def _ev_connection_update(self, f: Any) -> None:
        conn = self._connections.get(int(f.conn))
        if conn is None:
            return
        conn._interval_updating = False
        if not int(f.status):
            conn._interval_ms = int(f.conn_interval) * INTERVAL_UNIT_MS

    def _ev_encryption(self, f: Any) -> None:
        conn = self._connections.get(int(f.conn))
        if conn is not None:
            conn._security_updates += 1


_HANDLERS = {
    P.EV_CENTRAL_CONNECT: Adapter._ev_central_connect,
    P.EV_PERIPHERAL_CONNECT: Adapter._ev_peripheral_connect,
    P.EV_CENTRAL_DISCONNECT: Adapter._ev_disconnect,
    P.EV_PERIPHERAL_DISCONNECT: Adapter._ev_disconnect,
    P.EV_SCAN_RESULT: Adapter._ev_scan_result,
    P.EV_SCAN_DONE: Adapter._ev_scan_done,
    P.EV_ADVERTISE_DONE: Adapter._ev_advertise_done,
    P.EV_GATTS_WRITE: Adapter._ev_gatts_write,
    P.EV_GATTC_NOTIFY: Adapter._ev_notify,
    P.EV_GATTC_INDICATE: Adapter._ev_notify,
    P.EV_CONNECTION_UPDATE: Adapter._ev_connection_update,
    P.EV_ENCRYPTION_UPDATE: Adapter._ev_encryption,
}


# -- the default adapter and the adapters of several boards ----------------------------------------

#: An Adapter per board, and ``_bleio.adapter`` (the default one).
_LAYER = ble_session.Layer(LAYER, lambda adapter: adapter._sub is not None)
_using = threading.local()


default_port = ble_session.default_port


def adapter_for(board: Union[str, Any]) -> Adapter:
    """The Adapter of ``board``: a port (opened once and reset) or an open Board."""
    if isinstance(board, Adapter):
        return board
    return _LAYER.on(board, Adapter._make)


def observe_sessions(fn: Callable[[ble_session.Session], None]) -> None:
    """``fn(session)`` hears of the board of every Adapter handed out from now on (the default
    one and ``adapter_for``'s): ``blebridge run`` watches them for a lost board."""
    _LAYER.observe(fn)


def default() -> Adapter:
    """``_bleio.adapter``: the default board's Adapter, opened on first use."""
    return _LAYER.default(Adapter._make)


def set_default(adapter: Optional[Adapter]) -> None:
    _LAYER.set_default(adapter)


@contextlib.contextmanager
def using(adapter: Adapter) -> Iterator[Adapter]:
    """Local services made inside belong to ``adapter``."""
    check_type(adapter, Adapter, "adapter")
    stack = getattr(_using, "stack", None)
    if stack is None:
        stack = _using.stack = []
    stack.append(adapter)
    try:
        yield adapter
    finally:
        stack.pop()


def current_adapter() -> Adapter:
    """The adapter a new local Service belongs to."""
    stack = getattr(_using, "stack", None)
    return stack[-1] if stack else default()


def close_all() -> None:
    """Close every Adapter (and the boards it opened)."""
    _LAYER.close_all()
