"""``bluetooth.BLE`` over a blebridge board.

Every method maps onto one or two RPC calls (protocol/schema.toml); the board does the BLE work
and answers peers on its own. What lives here is what MicroPython's own C code does on top of
its stack (extmod/modbluetooth.c and extmod/nimble/modbluetooth_nimble.c):

- argument checking with MicroPython's exception types (TypeError for wrong types, ValueError
  for bad values, OSError(errno) for what the stack refuses);
- addresses in MicroPython's byte order (most significant byte first) while the wire carries
  them as on air (least significant first);
- IRQ tuples in MicroPython's shapes, with read-only memoryviews that are released when the
  handler returns ("only valid during the invocation of the IRQ handler");
- characteristic discovery results buffered by one, so each carries its end handle, with the
  UUID filter applied here so the end handles stay right (as the NimBLE binding does);
- handler return values for the board's questions (read request, L2CAP accept, secrets);
- local attribute buffers that grow on a longer local write, as MicroPython's GATTS db does;
- L2CAP receive buffering for l2cap_recvinto.

What is not MicroPython's lives below, shared with the other API layers: the board's event
session (blebridge.ble.session: dispatch, connection table, answering the board's questions
once, the "all events delivered" signal, one session per board) and the local GATT database
(blebridge.ble.gatt). This object subscribes to its board's session and keeps its own database.

Errno choices (NimBLE binding): radio off -> ENODEV; unknown connection -> ENOTCONN; unknown
attribute handle, L2CAP channel or bad value -> EINVAL; a local value bigger than any board
buffer -> ENOMEM. Statuses that already are errnos pass through unchanged.

Checks MicroPython's NimBLE binding and NimBLE itself make before anything reaches the air
(handle 0, empty discovery ranges, advertising data over 31 bytes, ...) are made here, at the
call, with the errno MicroPython's ble_hs_err_to_errno gives NimBLE's code; each names its
source line in docs/micropython.md ("Synchronous checks"). They come after the radio check, as
in the binding (_refuse).
"""
from __future__ import annotations

import errno as _errno
import os
import sys
import threading
import time
from typing import Any, Callable, Optional, Sequence

from .. import calls, events
from ..ble import gatt
from ..ble import session as ble_session
from .. import protocol as P
from ..ble import address as _address
from ..ble import advertising as _advertising
from ..ble import l2cap as _l2cap
from ..ble import status as _status
from ..ble.address import from_wire as _addr_from_wire, to_wire as _addr_to_wire
from ..ble.bonds import SecretStore
from ..errors import BlebridgeError, BoardError, BoardReset
from . import runtime
from .uuid import UUID, buffer_bytes

#: Port used by BLE() when nothing else is said: env BLEBRIDGE_PORT, else this simulated board.
DEFAULT_PORT = ble_session.DEFAULT_PORT

#: Bytes of a characteristic/descriptor buffer after registration (MP_BLUETOOTH_DEFAULT_ATTR_LEN).
DEFAULT_ATTR_LEN = 20
#: gap_connect()'s scan duration when none is given (MP_BLUETOOTH_CONNECT_DEFAULT_SCAN_DURATION_MS).
DEFAULT_CONNECT_SCAN_MS = 2000
#: gap_advertise()'s interval when none is given (modbluetooth.c), µs.
DEFAULT_ADV_INTERVAL_US = 500_000
#: gap_scan() defaults (NimBLE "background scan"), µs.
DEFAULT_SCAN_INTERVAL_US = 1_280_000
DEFAULT_SCAN_WINDOW_US = 11_250
#: L2CAP MTU bounds applied by modbluetooth.c before the stack sees it, bytes.
L2CAP_MIN_MTU = 32
#: A refused l2cap_connect is retried for this long (s), this far apart (s): the reason and
#: the values are blebridge.ble.l2cap's (CONNECT_RETRY_S), shared with aioble.
L2CAP_CONNECT_RETRY_S = _l2cap.CONNECT_RETRY_S
L2CAP_CONNECT_RETRY_GAP_S = _l2cap.CONNECT_RETRY_GAP_S
#: l2cap_send takes at most this many of our MTUs ((L2CAP_BUF_SIZE_MTUS_PER_CHANNEL - 1) in the
#: NimBLE binding).
L2CAP_SEND_MAX_OUR_MTUS = 2
#: rxbuf bounds checked by modbluetooth.c, bytes.
RXBUF_MIN, RXBUF_MAX = 16, 0xFFFF
#: Services one gatts_register_services takes (MP_BLUETOOTH_NIMBLE_MAX_SERVICES).
MAX_SERVICES = 8
#: Connection handle MicroPython reports for a connect that timed out or was cancelled.
CONN_HANDLE_NONE = 0xFFFF

# NimBLE limits and codes the synchronous checks use (nimble/include/nimble/hci_common.h,
# nimble/host/include/host/ble_hs.h, ble_gap.h, ble_att.h at MicroPython's lib/mynewt-nimble).
#: Legacy advertising / scan response payload, bytes (BLE_HCI_MAX_ADV_DATA_LEN, ..._SCAN_RSP_...).
ADV_DATA_MAX = _advertising.LEGACY_MAX
#: GAP device name, bytes (MYNEWT_VAL_BLE_SVC_GAP_DEVICE_NAME_MAX_LENGTH in MicroPython's syscfg.h).
GAP_NAME_MAX = 31
#: ATT MTU accepted by ble_att_set_preferred_mtu, bytes (BLE_ATT_MTU_DFLT, BLE_ATT_MTU_MAX).
ATT_MTU_MIN, ATT_MTU_MAX = 23, 527
#: Advertising interval unit, µs, and the range HCI accepts, units (BLE_HCI_ADV_ITVL[_MIN/_MAX]).
ADV_ITVL_UNIT_US = 625
ADV_ITVL_MIN, ADV_ITVL_MAX = 0x20, 0x4000
#: NimBLE's intervals when the binding passes 0 (BLE_GAP_ADV_FAST_INTERVAL1_MIN / 2_MIN), units.
ADV_ITVL_DEFAULT_CONNECTABLE, ADV_ITVL_DEFAULT_NONCONN = 48, 160
#: Scan interval/window unit, µs, and the clamp the binding applies, units (BLE_HCI_SCAN_*).
SCAN_ITVL_UNIT_US = 625
SCAN_ITVL_MIN, SCAN_ITVL_MAX = 0x4, 0x4000
#: Connection interval unit, µs, NimBLE's defaults for 0 (BLE_GAP_INITIAL_CONN_ITVL_MIN/MAX) and
#: the range HCI LE Create Connection accepts (Core spec Vol 4 Part E 7.8.12), units.
CONN_ITVL_UNIT_US = 1250
CONN_ITVL_DEFAULT_MIN, CONN_ITVL_DEFAULT_MAX = 24, 40
CONN_ITVL_MIN, CONN_ITVL_MAX = 0x0006, 0x0C80
#: Address types ble_gap_connect accepts (BLE_ADDR_PUBLIC .. BLE_ADDR_RANDOM_ID).
ADDR_TYPE_MAX = _address.RANDOM_ID
#: BLE_HS_* codes missing from the binding's ble_hs_err_to_errno table reach Python as
#: OSError(-code). These are the ones a call can meet synchronously:
#: ble_gattc_notify_custom/indicate_custom with no value and a handle that cannot be read.
ERRNO_BLE_HS_EAPP = -9
#: ble_gap_adv_set_data with more than 31 bytes returns the HCI constant
#: BLE_ERR_INV_HCI_CMD_PARMS (0x12) itself, not a BLE_HS_* code.
ERRNO_ADV_DATA_TOO_LONG = -0x12
#: A controller refusing a command's parameters: BLE_HS_HCI_ERR(BLE_ERR_INV_HCI_CMD_PARMS).
ERRNO_HCI_INVALID_PARAMS = -(0x200 + 0x12)

MAX_ATTR_LEN = P.LIMITS["MAX_ATTR_LEN"]
MAX_L2CAP_SDU = P.LIMITS["MAX_L2CAP_SDU"]
_CFG = P.CONSTANTS["config"]
_PASSKEY = P.CONSTANTS["passkey_action"]
#: Address modes 0..3 (PUBLIC, RANDOM, RPA, NRPA); the binding ignores any other value.
_ADDR_MODE_MAX = 3
_S = P.STATUS

ENODEV = _errno.ENODEV

# MicroPython IRQ codes (they equal the protocol's event codes by design; named here for reading).
_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_GATTS_READ_REQUEST = 4
_IRQ_SCAN_RESULT = 5
_IRQ_SCAN_DONE = 6
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_PERIPHERAL_DISCONNECT = 8
_IRQ_GATTC_SERVICE_RESULT = 9
_IRQ_GATTC_SERVICE_DONE = 10
_IRQ_GATTC_CHARACTERISTIC_RESULT = 11
_IRQ_GATTC_CHARACTERISTIC_DONE = 12
_IRQ_GATTC_DESCRIPTOR_RESULT = 13
_IRQ_GATTC_DESCRIPTOR_DONE = 14
_IRQ_GATTC_READ_RESULT = 15
_IRQ_GATTC_READ_DONE = 16
_IRQ_GATTC_WRITE_DONE = 17
_IRQ_GATTC_NOTIFY = 18
_IRQ_GATTC_INDICATE = 19
_IRQ_GATTS_INDICATE_DONE = 20
_IRQ_MTU_EXCHANGED = 21
_IRQ_L2CAP_ACCEPT = 22
_IRQ_L2CAP_CONNECT = 23
_IRQ_L2CAP_DISCONNECT = 24
_IRQ_L2CAP_RECV = 25
_IRQ_L2CAP_SEND_READY = 26
_IRQ_CONNECTION_UPDATE = 27
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30
_IRQ_PASSKEY_ACTION = 31


class BluetoothOSError(BlebridgeError, OSError):
    """OSError(errno) as MicroPython raises it, naming the operation and the board status.

    ``.errno`` and ``.args[0]`` are the errno MicroPython uses; ``.status_name`` is the board's
    status (e.g. ``NOT_ACTIVE``) and ``.method`` the BLE method called.
    """

    def __init__(self, errno_: int, method: str, status_name: str = "", detail: str = "") -> None:
        name = _errno.errorcode.get(errno_, str(errno_))
        why = detail or (f"board status {status_name}" if status_name else os.strerror(errno_))
        super().__init__(errno_, f"{method}: {name}: {why}")
        self.errno = errno_
        self.method = method
        self.status_name = status_name or name

    def __str__(self) -> str:
        return f"[Errno {self.errno}] {self.strerror}"

    def __reduce__(self):
        return (type(self), (self.errno, self.method, self.status_name))


# (RPC method, status) -> errno where the NimBLE binding reports a status differently for
# one method. UNKNOWN_HANDLE names a local attribute / L2CAP channel for these methods
# (EINVAL), a connection for all others (ENOTCONN, in _to_errno).
_METHOD_ERRNO = {
    **{(method, _S["UNKNOWN_HANDLE"]): _errno.EINVAL
       for method in ("gatts_read", "gatts_write", "gatts_set_buffer",
                      "l2cap_send", "l2cap_disconnect", "l2cap_recvinto")},
    # Nothing to cancel: NimBLE's ble_gap_conn_cancel says BLE_HS_EALREADY.
    ("gap_connect_cancel", _S["ENOENT"]): _errno.EALREADY,
    # The binding has no radio check for these: NimBLE finds no connection (ENOTCONN) or no
    # pairing procedure (ble_sm_inject_io: BLE_HS_ENOENT), which is also its answer for a
    # connection it does not know.
    ("gap_pair", _S["NOT_ACTIVE"]): _errno.ENOTCONN,
    ("gattc_exchange_mtu", _S["NOT_ACTIVE"]): _errno.ENOTCONN,
    ("gap_passkey", _S["NOT_ACTIVE"]): _errno.ENOENT,
    ("gap_passkey", _S["UNKNOWN_HANDLE"]): _errno.ENOENT,
}


def _to_errno(exc: BoardError) -> int:
    special = _METHOD_ERRNO.get((exc.method, exc.status))
    if special is not None:
        return special
    # The mapping every API shares: errno statuses as they are, NOT_ACTIVE -> ENODEV,
    # UNKNOWN_HANDLE -> ENOTCONN, other protocol statuses -> EINVAL.
    return _status.to_errno(exc.status)


def _int(value: Any) -> int:
    """mp_obj_get_int: ints and bools, TypeError for anything else."""
    if isinstance(value, int):
        return int(value)
    raise TypeError("can't convert %s to int" % type(value).__name__)


def _u16(value: Any) -> int:
    """mp_obj_get_int passed on as a C uint16_t (handles): the low 16 bits."""
    return _int(value) & 0xFFFF


def _u8(value: Any) -> int:
    """mp_obj_get_int passed on as a C uint8_t (address type, passkey action)."""
    return _int(value) & 0xFF


def _i32(value: Any) -> int:
    """mp_obj_get_int passed on as a C int32_t (durations, intervals)."""
    v = _int(value) & 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero), as the binding converts µs to units."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class _Discovery:
    """A characteristic discovery in progress on one connection."""

    __slots__ = ("end_handle", "uuid", "pending")

    def __init__(self, end_handle: int, uuid: Optional[UUID]) -> None:
        self.end_handle = end_handle
        self.uuid = uuid
        # (value_handle, properties, uuid) of the result waiting for the next one's def_handle.
        self.pending: Optional[tuple[int, int, UUID]] = None


class _GapState:
    """What NimBLE's GAP is doing, as far as this host has started it and seen it end."""

    __slots__ = ("advertising", "scanning", "connecting")

    def __init__(self) -> None:
        self.advertising = False
        self.scanning = False
        self.connecting = False

    def busy(self, connected: bool) -> str:
        """Why ble_gatts_reset would say BLE_HS_EBUSY (ble_gatts_mutable), or ''; ``connected``:
        a connection is open (the session's connection table)."""
        for what, on in (("advertising", self.advertising), ("scanning", self.scanning),
                         ("connecting", self.connecting), ("connected", connected)):
            if on:
                return what
        return ""


class _Channel:
    """An L2CAP channel: peer MTU for send checks, received bytes for l2cap_recvinto."""

    __slots__ = ("psm", "our_mtu", "peer_mtu", "rx", "open")

    def __init__(self, psm: int, our_mtu: int, peer_mtu: int) -> None:
        self.psm = psm
        self.our_mtu = our_mtu
        self.peer_mtu = peer_mtu
        self.rx = bytearray()
        self.open = True


#: MicroPython's BLE object per board (attached under "micropython" in its session), and BLE().
_LAYER = ble_session.Layer("micropython", lambda ble: not ble._closed)


#: Told instead of the default report on stderr when a board's link is lost (not a reset):
#: ``blebridge run`` ends the run there (runner.py). Set with set_lost_handler().
_lost_handler: Optional[Callable[[BaseException], None]] = None


def set_lost_handler(fn: Optional[Callable[[BaseException], None]]) -> None:
    """Call ``fn(exc)`` (on the board's event thread) when a board's link is lost; None restores
    the default (a line on stderr, and the script goes on)."""
    global _lost_handler
    _lost_handler = fn


#: The port BLE() opens: env BLEBRIDGE_PORT, else DEFAULT_PORT.
default_port = ble_session.default_port


def close_all() -> None:
    """Close every board this module opened (blebridge run calls this when the script ends)."""
    _LAYER.close_all(owned_only=True)


#: How long (s) a NimBLE board's EAGAIN "bond-store question open" is retried (BLE._rpc): the
#: question is answered or defaulted within QUESTION_TIMEOUT_MS, plus a margin.
NIMBLE_BUSY_RETRY_S = P.CONSTANTS["defaults"]["QUESTION_TIMEOUT_MS"] / 1000 + 1.0
#: Pause between two tries, s.
NIMBLE_BUSY_POLL_S = 0.005
#: active(True) returns once the events the board raised inside it (sent ahead of its response:
#: a NimBLE board's bond-store questions) are delivered, or after this long (s) whatever the
#: handler does: a question unanswered by then gets its default on the board anyway.
ACTIVATE_DELIVERY_S = P.CONSTANTS["defaults"]["QUESTION_TIMEOUT_MS"] / 1000

class BLE:
    """MicroPython's ``bluetooth.BLE`` on a blebridge board.

    ``BLE()`` is the default board: one object per process, on the port from
    ``blebridge run --port``, env ``BLEBRIDGE_PORT``, or ``sim:blebridge``.
    ``BLE(port="sim:bob")`` opens (once) another board; ``BLE(board)`` wraps an open
    :class:`blebridge.Board` (one BLE object per board). A board opened here is reset first, so
    a script starts from the state after boot, as it would on a board.
    """

    def __new__(cls, board: Any = None, /, *, port: Optional[str] = None) -> "BLE":
        if board is not None or port is not None:
            return _LAYER.on(board if board is not None else port, cls._make)
        return _LAYER.default(cls._make)

    @classmethod
    def _make(cls, session: ble_session.Session) -> "BLE":
        obj = super().__new__(cls)
        obj._setup(session)
        return obj

    def __init__(self, board: Any = None, /, *, port: Optional[str] = None) -> None:
        pass  # all set up once in __new__ (BLE() returns the same object every time)

    def _setup(self, session: ble_session.Session) -> None:
        self.session = session
        self.board = session.board
        self._owned = owned = session.owned
        self._irq: Optional[Callable[[int, tuple], Any]] = None
        self._lock = threading.Lock()
        self._tls = threading.local()
        # Config set while the radio is off, for keys MicroPython accepts then: applied on active(True).
        self._pending_config: dict[int, Any] = {}
        self._adv_data = b""
        self._resp_data = b""
        # The local database: each attribute's buffer length and append mode mirror the
        # board's pool, for local-write growth.
        self._db = gatt.GattDatabase()
        self._discoveries: dict[int, _Discovery] = {}
        self._channels: dict[tuple[int, int], _Channel] = {}
        # (conn, psm) -> (retry deadline, mtu) of our l2cap_connect calls not yet answered.
        self._l2cap_connecting: dict[tuple[int, int], tuple[float, int]] = {}
        # l2cap_listen succeeded: the binding's one channel is the server's until active(False).
        self._l2cap_listening = False
        # GAP procedures as this object started them and the board's events ended them, for
        # NimBLE's checks that depend on them (ble_gatts_mutable, ble_gap_disc, ble_gap_connect).
        self._gap = _GapState()
        self._closed = False
        # The radio's state as last seen (None: not known). Only the synchronous checks read
        # it, to answer ENODEV before an argument error as the binding does; a check that
        # fails while it is not True asks the board (see _require_radio).
        self._radio: Optional[bool] = False if owned else None
        # Connection with a characteristic discovery running (the binding allows one at a time).
        self._char_discovery_conn: Optional[int] = None
        self._gate = runtime.CallGate()
        #: Event frames the serial link lost since this object was made, and in how many gaps
        #: (docs/micropython.md, "A lossy link"). Not in MicroPython: read with getattr().
        self.link_frames_lost = 0
        self.link_gaps = 0
        self._subscription = session.subscribe(self._on_event)
        session.subscribe_lost(self._on_lost)
        session.subscribe_gap(self._on_gap)

    # -- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening to the board, and close it if this object opened it."""
        if self._closed:
            return
        self._closed = True
        session = self.session
        session.unsubscribe(self._subscription)
        session.unsubscribe_lost(self._on_lost)
        session.unsubscribe_gap(self._on_gap)
        runtime.ACTIVITY.set_busy(self, False)
        # The last layer on the board ends its session (closing the board if it was opened
        # here): a later BLE(port=spec) opens the board again.
        _LAYER.forget(self)

    def _rpc(self, call: Callable[..., Any], /, **args: Any) -> Any:
        """A typed call (blebridge.calls) on the board, with IRQ handlers held back while it
        runs (see runtime._CallGate).

        A NimBLE board refuses a radio call with EAGAIN while NimBLE's host task waits for the
        host's answer to a bond-store question (firmware/ports/nimble/README.md, "Threads": a
        bonded peer's CCCD records when it re-encrypts, bond lookups beyond the board's cache,
        deletes); MicroPython's NimBLE binding has no such refusal, so the call is tried
        again, the IRQ handlers let through in between (the answer may be theirs: this layer
        passes GET_SECRET / SET_SECRET to them), for at most NIMBLE_BUSY_RETRY_S."""
        deadline: Optional[float] = None
        while True:
            gate = self._gate
            gate.call_started()
            try:
                return call(self.board, **args)
            except BoardError as exc:
                if not self._nimble_busy(exc, call):
                    raise
                now = time.monotonic()
                deadline = now + NIMBLE_BUSY_RETRY_S if deadline is None else deadline
                if now >= deadline:
                    raise
            finally:
                gate.call_finished()
            gate.script_waits()  # this thread waits: the handlers due (the answer) may run
            time.sleep(NIMBLE_BUSY_POLL_S)

    def _nimble_busy(self, exc: BoardError, call: Callable[..., Any]) -> bool:
        # l2cap_send's EAGAIN is its own answer (the previous SDU still waits for credits).
        if exc.status != _S["EAGAIN"] or call is calls.l2cap_send:
            return False
        info = getattr(self.board, "info", None)
        return getattr(info, "port", None) == "nimble"

    def _call(self, call: Callable[..., Any], /, *, op: Optional[str] = None, **args: Any) -> Any:
        try:
            return self._rpc(call, **args)
        except BoardError as exc:
            # A typed call is named as its method.
            raise self._os_error(exc, op or call.__name__) from None

    def _os_error(self, exc: BoardError, method: str, errno_: Optional[int] = None) -> BluetoothOSError:
        if exc.status == _S["NOT_ACTIVE"]:
            self._radio = False
        code = _to_errno(exc) if errno_ is None else errno_
        return BluetoothOSError(code, method, exc.status_name, str(exc))

    def _require_radio(self, method: str) -> None:
        """Raise OSError(ENODEV) if the radio is off (the binding's mp_bluetooth_is_active).

        Asks the board only if the radio is not known to be on; the callers are the paths where
        a call is refused without reaching the board, so a call that goes through never asks.
        """
        if self._radio is not True:
            try:
                self._radio = bool(self._rpc(calls.ble_active, on=None))
            except BoardError as exc:
                raise self._os_error(exc, method) from None
        if not self._radio:
            raise BluetoothOSError(ENODEV, method, "NOT_ACTIVE", "the radio is not active")

    def _refuse(self, method: str, errno_: int, detail: str) -> BluetoothOSError:
        """The error for an argument NimBLE or its binding refuses after its radio check:
        OSError(errno_), found here without asking the board (ENODEV first if the radio is off)."""
        self._require_radio(method)
        return BluetoothOSError(errno_, method, detail=detail)

    def _on_lost(self, exc: BaseException) -> None:
        # Events the board had sent and the host not yet delivered are gone with the link.
        runtime.ACTIVITY.set_busy(self, False)
        handler = _lost_handler
        if handler is not None and not isinstance(exc, BoardReset):
            handler(exc)
            return
        print(f"blebridge: lost the board {getattr(self.board, 'spec', '')}: {exc}", file=sys.stderr)

    def _on_gap(self, gap: Any) -> None:
        # Runs on the dispatcher thread between the IRQs before and after the lost frames, so
        # the warning lands where the script's IRQ output shows the hole.
        self.link_gaps += 1
        self.link_frames_lost += gap.frames_lost
        print(f"blebridge: {getattr(self.board, 'spec', '')}: {gap.describe()}", file=sys.stderr)

    def __repr__(self) -> str:
        return f"<BLE on {getattr(self.board, 'spec', self.board)!r}>"

    # -- configuration -------------------------------------------------------------------------

    def active(self, active: Any = None, /) -> bool:
        """Turn the radio on or off (or just query it); returns the state after the call."""
        if active is None:
            self._radio = bool(self._call(calls.ble_active, on=None, op="active"))
            return self._radio
        on = bool(active)
        if not on:
            state = self._radio = bool(self._call(calls.ble_active, on=False, op="active"))
            self._forget_state()
            return state
        # The bonding secrets file is read (and checked) here, in the script's thread: a corrupt
        # one raises SecretStoreError from active(True), not later inside a pairing.
        self._secret_store()
        state = self._radio = bool(self._call(calls.ble_active, on=True, op="active"))
        self._deliver_raised_inside()
        pending, self._pending_config = self._pending_config, {}
        pending.setdefault(_CFG["READ_REQUEST"], self._irq is not None)
        for key, value in pending.items():
            self._call(calls.config_set, key=key, value=value, op="config")
        return state

    def _deliver_raised_inside(self) -> None:
        """Let the handler set now take the events the board raised inside the call just made.

        The core sends those ahead of the call's response (firmware/core/bb_core.c): a NimBLE
        board's bond-store questions (GET_SECRET) inside ble_active(True). MicroPython's NimBLE
        binding reads the bond store inside active(), with the handler set then; the script may
        set another one right after active() (multi_bluetooth ble_irq_calls: a handler that
        knows no _IRQ_GET_SECRET). So they are delivered here, before the call returns.
        """
        if runtime.in_handler():
            return  # this thread is the dispatcher: they are delivered after this handler
        session = self.session
        target = session.delivered + session.events_due()   # received by the response
        if session.dispatched >= target:
            return
        self._gate.script_waits()   # the handlers due run now: they belong to this call
        deadline = time.monotonic() + ACTIVATE_DELIVERY_S
        while session.dispatched < target and not self._closed and time.monotonic() < deadline:
            time.sleep(NIMBLE_BUSY_POLL_S)

    def _forget_state(self) -> None:
        with self._lock:
            self._db.clear()
            self._discoveries.clear()
            self._char_discovery_conn = None
            self._channels.clear()
            self._l2cap_connecting.clear()
            self._l2cap_listening = False
            self._gap = _GapState()
        self.session.forget_connections()

    def config(self, *args: Any, **kwargs: Any) -> Any:
        """``config('name')`` gets one value; ``config(name=value, ...)`` sets values."""
        if not kwargs:
            if len(args) != 1:
                raise TypeError("must query one param")
            return self._config_get(args[0])
        if args:
            raise TypeError("can't specify pos and kw args")
        for name, value in kwargs.items():
            self._config_set(name, value)
        return None

    def _config_get(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TypeError("can't convert %s to str" % type(name).__name__)
        keys = {"mac": "MAC", "addr_mode": "ADDR_MODE", "gap_name": "GAP_NAME", "mtu": "MTU",
                "rxbuf": "RXBUF", "bond": "BOND", "mitm": "MITM", "io": "IO",
                "le_secure": "LE_SECURE"}
        if name not in keys:
            raise ValueError("unknown config param")
        key = _CFG[keys[name]]
        if name == "mtu":
            # mp_bluetooth_get_preferred_mtu checks the radio; the board answers without it.
            self._require_radio("config")
        try:
            value = self._rpc(calls.config_get, key=key)
        except BoardError as exc:
            if exc.status == _S["NOT_ACTIVE"] and key in self._pending_config:
                value = self._pending_config[key]
            else:
                raise BluetoothOSError(_to_errno(exc), "config", exc.status_name, str(exc)) from None
        if name == "mac":
            addr_type, addr = value
            return (int(addr_type), _addr_from_wire(addr))
        if name == "gap_name":
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if name in ("bond", "mitm", "le_secure"):
            return bool(value)
        return int(value)

    def _config_set(self, name: str, value: Any) -> None:
        deferrable = True
        wire: Any
        if name == "gap_name":
            raw = buffer_bytes(value)
            if len(raw) > GAP_NAME_MAX:
                # mp_bluetooth_gap_set_device_name checks this before anything else (no radio check).
                raise BluetoothOSError(_errno.EINVAL, "config",
                                       detail=f"gap_name of {len(raw)} bytes is over {GAP_NAME_MAX}")
            key, wire = _CFG["GAP_NAME"], raw.decode("utf-8")
        elif name == "mtu":
            mtu = _u16(value)
            if mtu < ATT_MTU_MIN or mtu > ATT_MTU_MAX:
                raise self._refuse("config", _errno.EINVAL,
                                   f"mtu {mtu} is outside {ATT_MTU_MIN}..{ATT_MTU_MAX}")
            # The board's largest ATT MTU may be below NimBLE's (MAX_ATTR_LEN + 3).
            key, wire, deferrable = _CFG["MTU"], min(mtu, MAX_ATTR_LEN + 3), False
        elif name == "addr_mode":
            mode = _u8(value)
            if mode > _ADDR_MODE_MAX:
                # mp_bluetooth_set_address_mode has no case for it: nothing changes.
                self._require_radio("config")
                return
            key, wire, deferrable = _CFG["ADDR_MODE"], mode, False
        elif name == "mac":
            addr = buffer_bytes(value)
            if len(addr) != 6:
                raise ValueError("invalid addr")
            key, wire, deferrable = _CFG["MAC"], _addr_to_wire(addr), False
        elif name == "rxbuf":
            size = _int(value)
            if size < RXBUF_MIN or size > RXBUF_MAX:
                raise ValueError()
            key, wire = _CFG["RXBUF"], size
        elif name in ("bond", "mitm", "le_secure"):
            key, wire = _CFG[name.upper()], bool(value)
        elif name == "io":
            key, wire = _CFG["IO"], _int(value)
        else:
            raise ValueError("unknown config param")
        try:
            self._rpc(calls.config_set, key=key, value=wire)
        except BoardError as exc:
            if exc.status == _S["NOT_ACTIVE"] and deferrable:
                self._pending_config[key] = wire
                return
            raise BluetoothOSError(_to_errno(exc), "config", exc.status_name, str(exc)) from None

    def irq(self, handler: Optional[Callable[[int, tuple], Any]], /) -> None:
        """Register the event handler ``handler(event, data)`` (None removes it)."""
        if handler is not None and not callable(handler):
            raise ValueError("invalid handler")
        had = self._irq is not None
        self._irq = handler
        if had != (handler is not None):
            # NimBLE raises _IRQ_GATTS_READ_REQUEST on every peer read; ask the board to, only
            # while someone listens (each read then waits for the host's answer).
            key = _CFG["READ_REQUEST"]
            try:
                self._rpc(calls.config_set, key=key, value=handler is not None)
            except BoardError as exc:
                if exc.status != _S["NOT_ACTIVE"]:
                    raise BluetoothOSError(_to_errno(exc), "irq", exc.status_name, str(exc)) from None
                self._pending_config[key] = handler is not None

    # -- GAP ---------------------------------------------------------------------------------

    def gap_advertise(self, interval_us: Any = DEFAULT_ADV_INTERVAL_US, adv_data: Any = None, *,
                      resp_data: Any = None, connectable: Any = True) -> None:
        """Advertise every ``interval_us`` µs; None stops. None data reuses the previous data."""
        if interval_us is None:
            try:
                self._rpc(calls.gap_advertise_stop)
            except BoardError as exc:
                # NimBLE's advertise_stop never fails (not even with the radio off).
                if exc.status != _S["NOT_ACTIVE"] and exc.status not in _status.NOTHING_TO_STOP:
                    raise BluetoothOSError(_to_errno(exc), "gap_advertise", exc.status_name, str(exc)) from None
            self._gap.advertising = False
            return
        interval = _i32(interval_us)
        conn = bool(connectable)
        adv = None if adv_data is None else buffer_bytes(adv_data)
        resp = None if resp_data is None else buffer_bytes(resp_data)
        # The binding's order: radio, advertising data, response data, then the interval.
        if adv is not None:
            if len(adv) > ADV_DATA_MAX:
                raise self._refuse("gap_advertise", ERRNO_ADV_DATA_TOO_LONG,
                                   f"adv_data of {len(adv)} bytes is over {ADV_DATA_MAX} "
                                   "(ble_gap_adv_set_data: BLE_ERR_INV_HCI_CMD_PARMS)")
            self._adv_data = adv
        if resp is not None:
            if len(resp) > ADV_DATA_MAX:
                raise self._refuse("gap_advertise", _errno.EINVAL,
                                   f"resp_data of {len(resp)} bytes is over {ADV_DATA_MAX}")
            self._resp_data = resp
        units = _c_div(interval, ADV_ITVL_UNIT_US) & 0xFFFF
        if units == 0:
            units = ADV_ITVL_DEFAULT_CONNECTABLE if conn else ADV_ITVL_DEFAULT_NONCONN
        elif units < ADV_ITVL_MIN or units > ADV_ITVL_MAX:
            raise self._refuse("gap_advertise", ERRNO_HCI_INVALID_PARAMS,
                               f"interval {interval} µs is outside "
                               f"{ADV_ITVL_MIN * ADV_ITVL_UNIT_US}..{ADV_ITVL_MAX * ADV_ITVL_UNIT_US} µs "
                               "(the controller answers Invalid HCI Command Parameters)")
        # Non-connectable advertising is scannable (ADV_SCAN_IND), as NimBLE does it.
        # Set before the call: the event that ends it may be handled before the call returns.
        self._gap.advertising = True
        try:
            self._call(calls.gap_advertise_start, interval_us=units * ADV_ITVL_UNIT_US,
                       adv_data=self._adv_data, resp_data=self._resp_data, connectable=conn,
                       scannable=True, extended=False, timeout_ms=0, op="gap_advertise")
        except BaseException:
            self._gap.advertising = False
            raise

    def gap_scan(self, duration_ms: Any = 0, interval_us: Any = DEFAULT_SCAN_INTERVAL_US,
                 window_us: Any = DEFAULT_SCAN_WINDOW_US, active: Any = False, /) -> None:
        """Scan for ``duration_ms`` (0: until stopped); None stops (with _IRQ_SCAN_DONE)."""
        if duration_ms is None:
            try:
                self._rpc(calls.gap_scan_stop)
            except BoardError as exc:
                if exc.status not in _status.NOTHING_TO_STOP:
                    raise BluetoothOSError(_to_errno(exc), "gap_scan", exc.status_name, str(exc)) from None
            self._gap.scanning = False
            return
        duration = _i32(duration_ms)
        interval, window = _i32(interval_us), _i32(window_us)
        scan_active = bool(active)
        # The binding clamps both to what HCI accepts; ble_gap_disc refuses a window longer
        # than the interval.
        itvl = max(SCAN_ITVL_MIN, min(SCAN_ITVL_MAX, _c_div(interval, SCAN_ITVL_UNIT_US)))
        win = max(SCAN_ITVL_MIN, min(SCAN_ITVL_MAX, _c_div(window, SCAN_ITVL_UNIT_US)))
        if win > itvl:
            raise self._refuse("gap_scan", _errno.EINVAL,
                               f"window {window} µs is longer than the interval {interval} µs")
        if self._gap.connecting:
            raise self._refuse("gap_scan", _errno.EBUSY, "a gap_connect is pending")
        if self._gap.scanning:
            raise self._refuse("gap_scan", _errno.EALREADY, "already scanning")
        # A negative duration is a C int32 the stack takes as uint32 milliseconds.
        self._gap.scanning = True   # before the call: SCAN_DONE may be handled before it returns
        try:
            self._call(calls.gap_scan_start, duration_ms=duration & 0xFFFFFFFF,
                       interval_us=itvl * SCAN_ITVL_UNIT_US, window_us=win * SCAN_ITVL_UNIT_US,
                       active=scan_active, filter_duplicates=False, op="gap_scan")
        except BaseException:
            self._gap.scanning = False
            raise

    def gap_connect(self, addr_type: Any, addr: Any = ..., scan_duration_ms: Any = None,
                    min_conn_interval_us: Any = None, max_conn_interval_us: Any = None, /) -> None:
        """Connect to a peripheral; ``gap_connect(None)`` cancels a pending connect."""
        if addr is ...:
            if addr_type is None:
                self._call(calls.gap_connect_cancel, op="gap_connect")
                self._gap.connecting = False
                return
            raise TypeError("invalid addr")
        atype = _u8(addr_type)
        raw = buffer_bytes(addr)
        if len(raw) != 6:
            raise ValueError("invalid addr")
        scan_ms = DEFAULT_CONNECT_SCAN_MS if scan_duration_ms is None else _i32(scan_duration_ms)
        lo_us = 0 if min_conn_interval_us is None else _i32(min_conn_interval_us)
        hi_us = 0 if max_conn_interval_us is None else _i32(max_conn_interval_us)
        wire_addr = _addr_to_wire(raw)
        if self._gap.scanning:
            self.gap_scan(None)   # the binding stops a scan first (_IRQ_SCAN_DONE follows)
        if self._gap.connecting:
            raise self._refuse("gap_connect", _errno.EALREADY, "a gap_connect is pending")
        if atype > ADDR_TYPE_MAX:
            raise self._refuse("gap_connect", _errno.EINVAL, f"no address type {atype}")
        if self.session.is_connected_to(atype, wire_addr):
            # ble_gap_connect: BLE_HS_EDONE, which the binding's table makes EIO.
            raise self._refuse("gap_connect", _errno.EIO, f"already connected to {raw.hex(':')}")
        # 0 is NimBLE's default; the host does not check the rest ("XXX: Verify conn_params"),
        # the controller refuses it.
        lo = (_c_div(lo_us, CONN_ITVL_UNIT_US) & 0xFFFF) if lo_us else CONN_ITVL_DEFAULT_MIN
        hi = (_c_div(hi_us, CONN_ITVL_UNIT_US) & 0xFFFF) if hi_us else CONN_ITVL_DEFAULT_MAX
        if not CONN_ITVL_MIN <= lo <= hi <= CONN_ITVL_MAX:
            raise self._refuse("gap_connect", ERRNO_HCI_INVALID_PARAMS,
                               f"connection interval {lo * CONN_ITVL_UNIT_US}..{hi * CONN_ITVL_UNIT_US} µs "
                               f"is not within {CONN_ITVL_MIN * CONN_ITVL_UNIT_US}.."
                               f"{CONN_ITVL_MAX * CONN_ITVL_UNIT_US} µs, min <= max "
                               "(the controller answers Invalid HCI Command Parameters)")
        self._gap.connecting = True   # before the call: its end may be handled before it returns
        try:
            self._call(calls.gap_connect, addr_type=atype, addr=wire_addr,
                       scan_duration_ms=scan_ms & 0xFFFFFFFF,
                       min_conn_interval_us=lo * CONN_ITVL_UNIT_US if lo_us else None,
                       max_conn_interval_us=hi * CONN_ITVL_UNIT_US if hi_us else None, op="gap_connect")
        except BaseException:
            self._gap.connecting = False
            raise

    def gap_disconnect(self, conn_handle: Any, /) -> bool:
        """Disconnect; False if the handle was not connected."""
        conn = _u16(conn_handle)
        try:
            self._rpc(calls.gap_disconnect, conn=conn)
        except BoardError as exc:
            if exc.status in _status.NOT_CONNECTED:
                return False
            raise self._os_error(exc, "gap_disconnect") from None
        return True

    def gap_pair(self, conn_handle: Any, /) -> None:
        """Start pairing on a connection; _IRQ_ENCRYPTION_UPDATE follows."""
        self._call(calls.gap_pair, conn=_u16(conn_handle))

    def gap_passkey(self, conn_handle: Any, action: Any, passkey: Any, /) -> None:
        """Answer _IRQ_PASSKEY_ACTION (passkey, or 1/0 for numeric comparison)."""
        conn, act, key = _u16(conn_handle), _u8(action), _int(passkey)
        if act not in (_PASSKEY["INPUT"], _PASSKEY["DISPLAY"], _PASSKEY["NUMERIC_COMPARISON"]):
            # The binding checks this before NimBLE (and has no radio check here).
            raise BluetoothOSError(_errno.EINVAL, "gap_passkey", detail=f"no passkey action {act}")
        self._call(calls.gap_passkey, conn=conn, action=act, passkey=key)

    # -- GATT server -------------------------------------------------------------------------

    def gatts_register_services(self, services_definition: Any, /) -> tuple:
        """Replace the local services; returns one tuple of value handles per service."""
        services = _iterate(services_definition)
        busy = self._gap.busy(bool(self.session.connections))
        if busy:
            # ble_gatts_reset refuses while a GAP procedure runs or a connection is open; the
            # binding calls it before it reads the definition.
            raise self._refuse("gatts_register_services", _errno.EBUSY,
                               f"{busy}: advertising, scanning, connecting and connections "
                               "must be ended first")
        try:
            defined = self._definition_services(services)
        except (TypeError, ValueError):
            # The binding checks the radio after len(services), before reading them.
            self._require_radio("gatts_register_services")
            raise
        if len(services) > MAX_SERVICES:
            raise self._refuse("gatts_register_services", _errno.E2BIG,
                               f"{len(services)} services is more than {MAX_SERVICES}")
        registered = self._db.register(
            defined, lambda form: self._call(calls.gatts_register_services, services=form))
        # Per service its characteristics' value handles, each followed by its descriptors'.
        return tuple(tuple(h for char in service.characteristics
                           for h in (char.handle, *(d.handle for d in char.descriptors)))
                     for service in registered)

    @staticmethod
    def _definition_services(services: list) -> list[gatt.Service]:
        """The services of a definition as database objects (modbluetooth.c's checks and
        exceptions)."""
        out: list[gatt.Service] = []
        for service in services:
            items = _fixed(service, 2)
            if not isinstance(items[0], UUID):
                raise ValueError("invalid service UUID")
            chars: list[gatt.Characteristic] = []
            for characteristic in _iterate(items[1]):
                c = _sequence(characteristic)
                if len(c) < 2 or len(c) > 3:
                    raise ValueError("invalid characteristic tuple")
                if not isinstance(c[0], UUID):
                    raise ValueError("invalid characteristic UUID")
                flags = _int(c[1])
                dscs: list[gatt.Descriptor] = []
                if len(c) == 3:
                    for descriptor in _iterate(c[2]):
                        d = _fixed(descriptor, 2)
                        if not isinstance(d[0], UUID):
                            raise ValueError("invalid descriptor UUID")
                        dscs.append(gatt.Descriptor(bytes(d[0]), _int(d[1]), DEFAULT_ATTR_LEN))
                chars.append(gatt.Characteristic(bytes(c[0]), flags, DEFAULT_ATTR_LEN, descriptors=dscs))
            out.append(gatt.Service(bytes(items[0]), chars))
        return out

    def gatts_read(self, value_handle: Any, /) -> bytes:
        """The local value (in append mode this also empties it, as on a board)."""
        handle = _u16(value_handle)
        current = getattr(self._tls, "gatts_write", None)
        if current is not None and current[0] == handle:
            # Inside the _IRQ_GATTS_WRITE handler for this handle: the value the peer wrote,
            # as a board (whose handler runs before the next write lands) would return.
            return current[1]
        return bytes(self._call(calls.gatts_read, value_handle=handle))

    def gatts_write(self, value_handle: Any, data: Any, send_update: Any = False, /) -> int:
        """Set the local value (growing its buffer if needed); notify/indicate if asked."""
        value = buffer_bytes(data)   # modbluetooth.c reads the data before the handle
        handle = _u16(value_handle)
        if len(value) > MAX_ATTR_LEN:
            # After the binding's radio check and handle lookup, as its allocation would fail.
            if self._db.has_attributes() and self._db.attribute(handle) is None:
                raise self._refuse("gatts_write", _errno.EINVAL, f"no local attribute {handle}")
            raise self._refuse("gatts_write", _errno.ENOMEM,
                               f"{len(value)} bytes is more than an attribute holds ({MAX_ATTR_LEN})")
        attr = self._db.attribute(handle)
        if attr is not None and len(value) > attr.max_len:
            self._call(calls.gatts_set_buffer, value_handle=handle, len=len(value), append=attr.append,
                       op="gatts_write")
            attr.max_len = len(value)
        current = getattr(self._tls, "gatts_write", None)
        if current is not None and current[0] == handle:
            self._tls.gatts_write = None
        self._call(calls.gatts_write, value_handle=handle, data=value, send_update=bool(send_update))
        return len(value)

    def gatts_notify(self, conn_handle: Any, value_handle: Any, data: Any = None, /) -> None:
        """Notify one client (the local value when data is None)."""
        self._notify_indicate("gatts_notify", conn_handle, value_handle, data)

    def gatts_indicate(self, conn_handle: Any, value_handle: Any, data: Any = None, /) -> None:
        """Indicate to one client; _IRQ_GATTS_INDICATE_DONE follows its confirmation."""
        self._notify_indicate("gatts_indicate", conn_handle, value_handle, data)

    def _notify_indicate(self, method: str, conn_handle: Any, value_handle: Any, data: Any) -> None:
        conn, handle = _u16(conn_handle), _u16(value_handle)
        value = None if data is None else buffer_bytes(data)
        if value is not None and len(value) > MAX_ATTR_LEN:
            value = value[:MAX_ATTR_LEN]   # the stack truncates to the MTU anyway
        if handle == 0:
            # Without a value NimBLE first reads handle 0 from its database, which fails:
            # BLE_HS_EAPP; with one, ble_att_clt_tx_notify/indicate refuses handle 0: EINVAL.
            # Both before the connection is looked up.
            raise self._refuse(method, _errno.EINVAL if value is not None else ERRNO_BLE_HS_EAPP,
                               "attribute handle 0")
        try:
            self._rpc(calls.CALLS[method], conn=conn, value_handle=handle, data=value)
        except BoardError as exc:
            code = None
            if (exc.status == _S["UNKNOWN_HANDLE"] and self._db.has_attributes()
                    and self._db.attribute(handle) is None):
                code = _errno.EINVAL if value is not None else ERRNO_BLE_HS_EAPP
            raise self._os_error(exc, method, code) from None

    def gatts_set_buffer(self, value_handle: Any, len: Any, append: Any = False, /) -> None:
        """Size a value's buffer (longest peer write kept); append: writes accumulate."""
        handle, size, app = _u16(value_handle), _int(len), bool(append)
        if size < 0:
            # A C size_t far beyond memory: the db's m_renew_maybe fails for a known handle
            # (ENOMEM); an unknown one is EINVAL first.
            known = self._db.attribute(handle) is not None
            raise self._refuse("gatts_set_buffer", _errno.ENOMEM if known else _errno.EINVAL,
                               f"length {size}" if known else f"no local attribute {handle}")
        # A peer can never write more than an attribute's maximum, so a bigger buffer is this.
        size = min(size, MAX_ATTR_LEN)
        self._call(calls.gatts_set_buffer, value_handle=handle, len=size, append=app)
        attr = self._db.attribute(handle)
        if attr is not None:
            attr.max_len, attr.append = size, app

    # -- GATT client -------------------------------------------------------------------------

    def gattc_discover_services(self, conn_handle: Any, uuid: Any = None, /) -> None:
        """Discover primary services (optionally only ``uuid``)."""
        conn = _u16(conn_handle)
        if uuid is not None and not isinstance(uuid, UUID):
            raise TypeError("UUID")
        self._call(calls.gattc_discover_services, conn=conn, uuid=None if uuid is None else bytes(uuid))

    def gattc_discover_characteristics(self, conn_handle: Any, start_handle: Any, end_handle: Any,
                                       uuid: Any = None, /) -> None:
        """Discover characteristics in a handle range (optionally only ``uuid``)."""
        conn, start, end = _u16(conn_handle), _u16(start_handle), _u16(end_handle)
        if uuid is not None and not isinstance(uuid, UUID):
            raise TypeError("UUID")
        method = "gattc_discover_characteristics"
        with self._lock:
            running = self._char_discovery_conn
        if running is not None:
            # The binding keeps one pending result, so it allows one discovery at a time,
            # on any connection.
            raise self._refuse(method, _errno.EBUSY,
                               f"a characteristic discovery is running on connection {running}")
        if start == 0 or start > end:
            # ble_att_clt_tx_read_type: start_handle == 0 || start_handle > end_handle.
            raise self._refuse(method, _errno.EINVAL, f"handle range {start}..{end}")
        with self._lock:
            self._discoveries[conn] = _Discovery(end, uuid)
            self._char_discovery_conn = conn
        try:
            # All characteristics are asked for: the filter is applied here, so each result's
            # end handle can come from the next characteristic even when that one is filtered out.
            self._call(calls.gattc_discover_characteristics, conn=conn, start_handle=start,
                       end_handle=end, uuid=None)
        except BaseException:
            with self._lock:
                self._discoveries.pop(conn, None)
                self._char_discovery_conn = None
            raise

    def gattc_discover_descriptors(self, conn_handle: Any, start_handle: Any, end_handle: Any,
                                   uuid: Any = None, /) -> None:
        """Discover descriptors after ``start_handle`` up to ``end_handle``.

        As with NimBLE, the search starts at start_handle + 1: scripts pass a characteristic's
        value handle (or a service's start handle), which is not a descriptor itself.
        blebridge extension: ``uuid`` finds only that descriptor type.
        """
        conn, start, end = _u16(conn_handle), _u16(start_handle), _u16(end_handle)
        if uuid is not None and not isinstance(uuid, UUID):
            raise TypeError("UUID")
        first = (start + 1) & 0xFFFF   # NimBLE's uint16 prev_handle + 1
        if first == 0 or first > end:
            # ble_att_clt_tx_find_info: start_handle == 0 || start_handle > end_handle, so a
            # characteristic with nothing after its value handle (start == end) is refused.
            raise self._refuse("gattc_discover_descriptors", _errno.EINVAL,
                               f"nothing after handle {start} up to {end}")
        self._call(calls.gattc_discover_descriptors, conn=conn, start_handle=first, end_handle=end,
                   uuid=None if uuid is None else bytes(uuid))

    def gattc_read(self, conn_handle: Any, value_handle: Any, /) -> None:
        """Read a remote value; _IRQ_GATTC_READ_RESULT then _IRQ_GATTC_READ_DONE."""
        conn, handle = _u16(conn_handle), _u16(value_handle)
        if handle == 0:
            # ble_att_clt_tx_read: handle == 0, before the connection is looked up.
            raise self._refuse("gattc_read", _errno.EINVAL, "attribute handle 0")
        self._call(calls.gattc_read, conn=conn, value_handle=handle)

    def gattc_write(self, conn_handle: Any, value_handle: Any, data: Any, mode: Any = 0, /) -> None:
        """Write a remote value: mode 0 without response, 1 with (_IRQ_GATTC_WRITE_DONE)."""
        conn, handle = _u16(conn_handle), _u16(value_handle)
        value = buffer_bytes(data)
        m = _int(mode) & 0xFFFFFFFF   # a C unsigned int
        if m not in (0, 1):
            raise self._refuse("gattc_write", _errno.EINVAL, f"no write mode {m}")
        # NimBLE has no check for handle 0 here (the peer answers it) and cuts a value to the
        # ATT MTU - 3 (ble_att_truncate_to_mtu), never above an attribute's maximum.
        self._call(calls.gattc_write, conn=conn, value_handle=handle, data=value[:MAX_ATTR_LEN], mode=m)

    def gattc_exchange_mtu(self, conn_handle: Any, /) -> None:
        """Exchange MTUs with the peer (ours is config('mtu')); _IRQ_MTU_EXCHANGED follows."""
        self._call(calls.gattc_exchange_mtu, conn=_u16(conn_handle))

    # -- L2CAP -------------------------------------------------------------------------------

    def _l2cap_mtu(self, mtu: Any) -> int:
        value = max(L2CAP_MIN_MTU, min(0xFFFF, _int(mtu)))
        caps = getattr(getattr(self.board, "info", None), "caps", None) or {}
        return min(value, int(caps.get("max_l2cap_mtu") or MAX_L2CAP_SDU))

    def _l2cap_channel_free(self, method: str) -> None:
        """The binding has one L2CAP channel, taken by listening (for good) or by a channel
        being opened or open: another listen or connect is EALREADY (create_l2cap_channel)."""
        with self._lock:
            busy = (self._l2cap_listening or bool(self._l2cap_connecting)
                    or any(chan.open for chan in self._channels.values()))
        if busy:
            raise BluetoothOSError(_errno.EALREADY, method,
                                   detail="the L2CAP channel is in use (listening, opening or open)")

    def l2cap_listen(self, psm: Any, mtu: Any, /) -> None:
        """Accept L2CAP channels on ``psm`` (MTU clamped to what the board can buffer)."""
        channel_psm, our_mtu = _u16(psm), self._l2cap_mtu(mtu)
        self._l2cap_channel_free("l2cap_listen")
        self._call(calls.l2cap_listen, psm=channel_psm, mtu=our_mtu)
        self._l2cap_listening = True

    def l2cap_connect(self, conn_handle: Any, psm: Any, mtu: Any, /) -> None:
        """Open an L2CAP channel; _IRQ_L2CAP_CONNECT (or _DISCONNECT with a status) follows."""
        conn, channel_psm, our_mtu = _u16(conn_handle), _u16(psm), self._l2cap_mtu(mtu)
        self._l2cap_channel_free("l2cap_connect")
        self._l2cap_connecting[(conn, channel_psm)] = (time.monotonic() + L2CAP_CONNECT_RETRY_S, our_mtu)
        try:
            self._call(calls.l2cap_connect, conn=conn, psm=channel_psm, mtu=our_mtu)
        except BaseException:
            self._l2cap_connecting.pop((conn, channel_psm), None)
            raise

    def l2cap_disconnect(self, conn_handle: Any, cid: Any, /) -> None:
        """Close an L2CAP channel; _IRQ_L2CAP_DISCONNECT follows."""
        self._call(calls.l2cap_disconnect, conn=_u16(conn_handle), cid=_u16(cid))

    def l2cap_send(self, conn_handle: Any, cid: Any, buf: Any, /) -> bool:
        """Send one SDU; False: stalled, wait for _IRQ_L2CAP_SEND_READY before sending more."""
        conn, channel_id = _u16(conn_handle), _u16(cid)
        data = buffer_bytes(buf)
        chan = self._channels.get((conn, channel_id))
        if chan is None or not chan.open:
            raise BluetoothOSError(_errno.EINVAL, "l2cap_send", detail=f"no L2CAP channel {conn}/{channel_id}")
        if len(data) > chan.peer_mtu or len(data) > MAX_L2CAP_SDU:
            raise BluetoothOSError(_errno.EINVAL, "l2cap_send",
                                   detail=f"{len(data)} bytes is more than the peer's MTU {chan.peer_mtu}")
        if chan.our_mtu and len(data) > L2CAP_SEND_MAX_OUR_MTUS * chan.our_mtu:
            # The binding's channel pool keeps one of its three MTUs for receiving.
            raise BluetoothOSError(_errno.EINVAL, "l2cap_send",
                                   detail=f"{len(data)} bytes is more than {L2CAP_SEND_MAX_OUR_MTUS} "
                                          f"times our MTU {chan.our_mtu}")
        return bool(self._call(calls.l2cap_send, conn=conn, cid=channel_id, data=data))

    def l2cap_recvinto(self, conn_handle: Any, cid: Any, buf: Any, /) -> int:
        """Move received bytes into ``buf``; returns the count (buf None: bytes waiting)."""
        conn, channel_id = _u16(conn_handle), _u16(cid)
        target = None
        if buf is not None:
            try:
                target = memoryview(buf)
            except TypeError:
                raise TypeError("object with buffer protocol required") from None
            if target.readonly:
                raise TypeError("object with buffer protocol required")
            target = target.cast("B")
        with self._lock:
            chan = self._channels.get((conn, channel_id))
            if chan is None:
                raise BluetoothOSError(_errno.EINVAL, "l2cap_recvinto",
                                       detail=f"no L2CAP channel {conn}/{channel_id}")
            if target is None:
                return len(chan.rx)
            n = min(len(target), len(chan.rx))
            target[:n] = chan.rx[:n]
            del chan.rx[:n]
            if not chan.open and not chan.rx:
                # Closed channels stay readable until drained (events arrive asynchronously here).
                del self._channels[(conn, channel_id)]
            return n

    # -- events ------------------------------------------------------------------------------

    def _invoke(self, event: int, data: tuple, views: Sequence[memoryview] = ()) -> Any:
        handler = self._irq
        if handler is None:
            return None
        if not runtime.in_handler():
            self._gate.wait_for_turn()
        with runtime.handler_turn(), runtime.SCHED_LOCK:
            nested = runtime.in_handler()
            runtime.set_in_handler(True)
            try:
                return handler(event, data)
            except Exception:
                runtime.report_exception("Unhandled exception in IRQ callback handler")
                # The board disables the handler after an uncaught exception.
                if self._irq is handler:
                    self._irq = None
                return None
            finally:
                runtime.set_in_handler(nested)
                for mv in views:
                    try:
                        mv.release()
                    except (BufferError, ValueError):
                        pass

    def _reply(self, token: int, value: Any) -> None:
        """Answer the board's question (once: the session drops a second answer)."""
        self.session.answer(token, value)

    def _secret_store(self) -> SecretStore:
        """The host's store of this board's bonding secrets (the session's: one per board),
        loaded on first use (active(True)). Raises SecretStoreError when its file cannot be
        used; the next call tries again."""
        return self.session.secret_store()

    def _on_event(self, ev: Any) -> None:
        """Board event -> MicroPython IRQ (runs on the board's dispatcher thread, in order).

        The board stays busy for runtime.ACTIVITY from the first event of a batch until no
        received event is left to deliver, so a script's wait ends after the whole batch.
        """
        if self._closed:
            return
        runtime.ACTIVITY.set_busy(self, True)
        try:
            handler = _EVENT_HANDLERS.get(ev.code)
            if handler is not None:
                handler(self, ev.typed)     # ProtocolError if its fields do not match the schema
        except Exception:
            runtime.report_exception(f"blebridge: cannot deliver board event {ev.name}")
        finally:
            runtime.ACTIVITY.set_busy(self, not self._closed and self.session.events_due() > 0)

    # Each _ev_* turns one board event into the MicroPython IRQ(s).

    def _ev_connect(self, code: int, f: events.CentralConnect | events.PeripheralConnect) -> None:
        conn, addr_type, addr = f.conn, f.addr_type, f.addr
        # The session's connection table has it already.
        if code == _IRQ_PERIPHERAL_CONNECT:
            with self._lock:
                self._gap.connecting = False
        mv = memoryview(_addr_from_wire(addr))
        self._invoke(code, (int(conn), int(addr_type), mv), (mv,))

    def _ev_disconnect(self, code: int, f: events.CentralDisconnect | events.PeripheralDisconnect) -> None:
        conn, addr_type, addr = int(f.conn), f.addr_type, f.addr
        with self._lock:
            if code == _IRQ_PERIPHERAL_DISCONNECT and conn == CONN_HANDLE_NONE:
                self._gap.connecting = False   # the connect failed, timed out or was cancelled
            self._discoveries.pop(conn, None)
            if self._char_discovery_conn == conn:
                self._char_discovery_conn = None
            for key in [k for k in self._l2cap_connecting if k[0] == conn]:
                del self._l2cap_connecting[key]
            for key in [k for k in self._channels if k[0] == conn]:
                chan = self._channels[key]
                chan.open = False
                if not chan.rx:
                    del self._channels[key]
        mv = memoryview(_addr_from_wire(addr))
        self._invoke(code, (conn, int(addr_type), mv), (mv,))

    def _ev_gatts_write(self, f: events.GattsWrite) -> None:
        conn, handle, data = int(f.conn), int(f.value_handle), bytes(f.data)
        attr = self._db.attribute(handle)
        appending = attr is not None and attr.append
        self._tls.gatts_write = None if appending else (handle, data)
        try:
            self._invoke(_IRQ_GATTS_WRITE, (conn, handle))
        finally:
            self._tls.gatts_write = None

    def _ev_read_request(self, f: events.GattsReadRequest) -> None:
        token, conn, handle = f.token, int(f.conn), int(f.value_handle)
        result = self._invoke(_IRQ_GATTS_READ_REQUEST, (conn, handle))
        self._reply(token, _int_or_zero(result))

    def _ev_scan_result(self, f: events.ScanResult) -> None:
        addr_type, addr, adv_type, rssi, adv_data = f.addr_type, f.addr, f.adv_type, f.rssi, f.adv_data
        mv_addr = memoryview(_addr_from_wire(addr))
        mv_data = memoryview(bytes(adv_data))
        self._invoke(_IRQ_SCAN_RESULT, (int(addr_type), mv_addr, int(adv_type), int(rssi), mv_data),
                     (mv_addr, mv_data))

    def _ev_scan_done(self, f: events.ScanDone) -> None:
        self._gap.scanning = False
        self._invoke(_IRQ_SCAN_DONE, ())

    def _ev_advertise_done(self, f: events.AdvertiseDone) -> None:
        # No MicroPython IRQ: NimBLE's binding ignores the end of advertising.
        self._gap.advertising = False

    def _ev_service_result(self, f: events.GattcServiceResult) -> None:
        conn, start, end, uuid = f.conn, f.start_handle, f.end_handle, f.uuid
        self._invoke(_IRQ_GATTC_SERVICE_RESULT, (int(conn), int(start), int(end), UUID(bytes(uuid))))

    def _ev_characteristic_result(self, f: events.GattcCharacteristicResult) -> None:
        conn, def_handle, value_handle = int(f.conn), int(f.def_handle), int(f.value_handle)
        properties, uuid = int(f.properties), UUID(bytes(f.uuid))
        disc = self._discoveries.get(conn)
        if disc is None:
            # Not started by us (or already finished): report it with its own range unknown.
            self._invoke(_IRQ_GATTC_CHARACTERISTIC_RESULT, (conn, def_handle, value_handle, properties, uuid))
            return
        if disc.pending is not None:
            vh, props, u = disc.pending
            disc.pending = None
            self._invoke(_IRQ_GATTC_CHARACTERISTIC_RESULT, (conn, def_handle - 1, vh, props, u))
        if disc.uuid is None or disc.uuid == uuid:
            disc.pending = (value_handle, properties, uuid)

    def _ev_characteristic_done(self, f: events.GattcCharacteristicDone) -> None:
        conn, status = int(f.conn), int(f.status)
        with self._lock:
            disc = self._discoveries.pop(conn, None)
            if self._char_discovery_conn == conn:
                self._char_discovery_conn = None
        if disc is not None and disc.pending is not None:
            vh, props, u = disc.pending
            self._invoke(_IRQ_GATTC_CHARACTERISTIC_RESULT, (conn, disc.end_handle, vh, props, u))
        self._invoke(_IRQ_GATTC_CHARACTERISTIC_DONE, (conn, status))

    def _ev_descriptor_result(self, f: events.GattcDescriptorResult) -> None:
        conn, handle, uuid = f.conn, f.handle, f.uuid
        self._invoke(_IRQ_GATTC_DESCRIPTOR_RESULT, (int(conn), int(handle), UUID(bytes(uuid))))

    def _ev_data(self, code: int,
                 f: events.GattcReadResult | events.GattcNotify | events.GattcIndicate) -> None:
        conn, handle, data = f.conn, f.value_handle, f.data
        mv = memoryview(bytes(data))
        self._invoke(code, (int(conn), int(handle), mv), (mv,))

    def _ev_l2cap_accept(self, f: events.L2capAccept) -> None:
        token, conn, cid = int(f.token), int(f.conn), int(f.cid)
        psm, our_mtu, peer_mtu = int(f.psm), int(f.our_mtu), int(f.peer_mtu)
        result = self._invoke(_IRQ_L2CAP_ACCEPT, (conn, cid, psm, our_mtu, peer_mtu))
        self._reply(token, _int_or_zero(result))

    def _ev_l2cap_connect(self, f: events.L2capConnect) -> None:
        conn, cid, psm = int(f.conn), int(f.cid), int(f.psm)
        our_mtu, peer_mtu = int(f.our_mtu), int(f.peer_mtu)
        self._l2cap_connecting.pop((conn, psm), None)
        with self._lock:
            self._channels[(conn, cid)] = _Channel(psm, our_mtu, peer_mtu)
        self._invoke(_IRQ_L2CAP_CONNECT, (conn, cid, psm, our_mtu, peer_mtu))

    def _ev_l2cap_disconnect(self, f: events.L2capDisconnect) -> None:
        conn, cid, psm, status = int(f.conn), int(f.cid), int(f.psm), int(f.status)
        pending = self._l2cap_connecting.pop((conn, psm), None)
        if status and pending is not None and time.monotonic() < pending[0]:
            time.sleep(L2CAP_CONNECT_RETRY_GAP_S)
            try:
                self._l2cap_connecting[(conn, psm)] = pending
                self._rpc(calls.l2cap_connect, conn=conn, psm=psm, mtu=pending[1])
                return
            except BoardError:
                self._l2cap_connecting.pop((conn, psm), None)
        with self._lock:
            chan = self._channels.get((conn, cid))
            if chan is not None:
                chan.open = False
                if not chan.rx:
                    del self._channels[(conn, cid)]
        self._invoke(_IRQ_L2CAP_DISCONNECT, (conn, cid, psm, status))

    def _ev_l2cap_recv(self, f: events.L2capRecv) -> None:
        conn, cid, data = int(f.conn), int(f.cid), f.data
        with self._lock:
            chan = self._channels.get((conn, cid))
            if chan is None:
                chan = self._channels[(conn, cid)] = _Channel(0, 0, 0)
            chan.rx += data
        self._invoke(_IRQ_L2CAP_RECV, (conn, cid))

    def _ev_encryption_update(self, f: events.EncryptionUpdate) -> None:
        conn, encrypted, authenticated, bonded, key_size = (f.conn, f.encrypted, f.authenticated,
                                                            f.bonded, f.key_size)
        # MicroPython passes these as ints (the conformance tests print "1 0 1").
        self._invoke(_IRQ_ENCRYPTION_UPDATE,
                     (int(conn), int(bool(encrypted)), int(bool(authenticated)), int(bool(bonded)), int(key_size)))

    def _ev_get_secret(self, f: events.GetSecret) -> None:
        token, sec_type, index, key = int(f.token), int(f.sec_type), int(f.index), f.key
        mv = None if key is None else memoryview(bytes(key))
        result = self._invoke(_IRQ_GET_SECRET, (sec_type, index, mv), (mv,) if mv is not None else ())
        value: Optional[bytes]
        if result is None:
            value = self.session.stored_secret(sec_type, index, None if key is None else bytes(key))
        else:
            value = buffer_bytes(result)
        self._reply(token, value)

    def _ev_set_secret(self, f: events.SetSecret) -> None:
        token, sec_type, key, value = int(f.token), int(f.sec_type), bytes(f.key), f.value
        mv_key = memoryview(key)
        mv_value = None if value is None else memoryview(bytes(value))
        views = (mv_key,) if mv_value is None else (mv_key, mv_value)
        result = self._invoke(_IRQ_SET_SECRET, (sec_type, mv_key, mv_value), views)
        if result is None:
            stored = self.session.store_secret(sec_type, key, None if value is None else bytes(value))
        else:
            stored = bool(result)
        self._reply(token, stored)

    def _ev_passkey_action(self, f: events.PasskeyAction) -> None:
        conn, action, passkey = int(f.conn), int(f.action), int(f.passkey)
        self._invoke(_IRQ_PASSKEY_ACTION, (conn, action, passkey))

    def _ev_mtu_exchanged(self, f: events.MtuExchanged) -> None:
        # Every report is passed on: MicroPython reports each exchange, whichever side asked.
        self._invoke(_IRQ_MTU_EXCHANGED, (int(f.conn), int(f.mtu)))

    def _ev_plain(self, code: int, f: Any) -> None:
        # Events whose IRQ data are all their fields, in schema order, as ints (every field of
        # these events is a uint): the order is MicroPython's too.
        self._invoke(code, tuple(int(x) for x in f))


def _int_or_zero(result: Any) -> int:
    """mp_obj_get_int_maybe: an int result is the answer, anything else means 0."""
    return int(result) if isinstance(result, int) else 0


def _sequence(obj: Any) -> Sequence:
    if isinstance(obj, (tuple, list)):
        return obj
    raise TypeError("object '%s' isn't a tuple or list" % type(obj).__name__)


def _fixed(obj: Any, n: int) -> Sequence:
    seq = _sequence(obj)
    if len(seq) != n:
        raise ValueError("tuple/list has wrong length")
    return seq


def _iterate(obj: Any) -> list:
    try:
        len(obj)
        return list(iter(obj))
    except TypeError:
        raise TypeError("object of type '%s' has no len()" % type(obj).__name__) from None


_EVENT_HANDLERS: dict[int, Callable[[BLE, Any], None]] = {
    P.EV_CENTRAL_CONNECT: lambda b, f: b._ev_connect(_IRQ_CENTRAL_CONNECT, f),
    P.EV_CENTRAL_DISCONNECT: lambda b, f: b._ev_disconnect(_IRQ_CENTRAL_DISCONNECT, f),
    P.EV_GATTS_WRITE: BLE._ev_gatts_write,
    P.EV_GATTS_READ_REQUEST: BLE._ev_read_request,
    P.EV_SCAN_RESULT: BLE._ev_scan_result,
    P.EV_SCAN_DONE: BLE._ev_scan_done,
    P.EV_ADVERTISE_DONE: BLE._ev_advertise_done,
    P.EV_PERIPHERAL_CONNECT: lambda b, f: b._ev_connect(_IRQ_PERIPHERAL_CONNECT, f),
    P.EV_PERIPHERAL_DISCONNECT: lambda b, f: b._ev_disconnect(_IRQ_PERIPHERAL_DISCONNECT, f),
    P.EV_GATTC_SERVICE_RESULT: BLE._ev_service_result,
    P.EV_GATTC_SERVICE_DONE: lambda b, f: b._ev_plain(_IRQ_GATTC_SERVICE_DONE, f),
    P.EV_GATTC_CHARACTERISTIC_RESULT: BLE._ev_characteristic_result,
    P.EV_GATTC_CHARACTERISTIC_DONE: BLE._ev_characteristic_done,
    P.EV_GATTC_DESCRIPTOR_RESULT: BLE._ev_descriptor_result,
    P.EV_GATTC_DESCRIPTOR_DONE: lambda b, f: b._ev_plain(_IRQ_GATTC_DESCRIPTOR_DONE, f),
    P.EV_GATTC_READ_RESULT: lambda b, f: b._ev_data(_IRQ_GATTC_READ_RESULT, f),
    P.EV_GATTC_READ_DONE: lambda b, f: b._ev_plain(_IRQ_GATTC_READ_DONE, f),
    P.EV_GATTC_WRITE_DONE: lambda b, f: b._ev_plain(_IRQ_GATTC_WRITE_DONE, f),
    P.EV_GATTC_NOTIFY: lambda b, f: b._ev_data(_IRQ_GATTC_NOTIFY, f),
    P.EV_GATTC_INDICATE: lambda b, f: b._ev_data(_IRQ_GATTC_INDICATE, f),
    P.EV_GATTS_INDICATE_DONE: lambda b, f: b._ev_plain(_IRQ_GATTS_INDICATE_DONE, f),
    P.EV_MTU_EXCHANGED: BLE._ev_mtu_exchanged,
    P.EV_L2CAP_ACCEPT: BLE._ev_l2cap_accept,
    P.EV_L2CAP_CONNECT: BLE._ev_l2cap_connect,
    P.EV_L2CAP_DISCONNECT: BLE._ev_l2cap_disconnect,
    P.EV_L2CAP_RECV: BLE._ev_l2cap_recv,
    P.EV_L2CAP_SEND_READY: lambda b, f: b._ev_plain(_IRQ_L2CAP_SEND_READY, f),
    P.EV_CONNECTION_UPDATE: lambda b, f: b._ev_plain(_IRQ_CONNECTION_UPDATE, f),
    P.EV_ENCRYPTION_UPDATE: BLE._ev_encryption_update,
    P.EV_GET_SECRET: BLE._ev_get_secret,
    P.EV_SET_SECRET: BLE._ev_set_secret,
    P.EV_PASSKEY_ACTION: BLE._ev_passkey_action,
}
