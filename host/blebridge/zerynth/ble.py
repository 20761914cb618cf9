"""Zerynth's ``wireless.ble`` on one board: :class:`ZerynthBle`, and the driver binding.

On a Zerynth board ``wireless.ble`` is a thin module over a driver (``nrf52_ble``,
``esp32ble``) that ``bledrv.init()`` installs as the VM's default BLE driver. Here the driver is
a :class:`ZerynthBle` on one board's event session (blebridge.ble.session): ``init_driver``
opens the board (the ``--port`` one under ``blebridge run``) and makes it the default, and the
shim module ``wireless.ble`` calls the default. Programs that drive several boards use
:func:`open_ble`, which returns a ZerynthBle with the module's functions as methods.

Kept from Zerynth: argument shapes, constants, the (status, value) characteristic callback and
one callback per GAP event, run on one event thread per board as the drivers' ``_event_loop``
does. Everything else (UUIDs, addresses, AD data, the GATT database, bonds) is blebridge.ble's.
Deliberate differences are listed in docs/zerynth.md.
"""
from __future__ import annotations

import queue
import sys
import threading
import traceback
from typing import Any, Callable, Optional

from .. import calls
from .. import protocol as P
from ..ble import address as _address
from ..ble import advertising as _adv
from ..ble import gatt as _gatt
from ..ble import session as ble_session
from ..ble.uuid import UUID
from ..errors import BoardError

# -- constants, as wireless/ble.py has them ------------------------------------------------------

BROADCAST = 1
READ = 2
WRITE_WO = 4
WRITE = 8
NOTIFY = 16
INDICATE = 32
WRITE_SIGNED = 64

NUMBER = 0
STRING = 1
BYTES = 2

EVT_CONNECTED = 0
EVT_DISCONNECTED = 1
EVT_SCAN_REPORT = 2
EVT_SCAN_STARTED = 3
EVT_SCAN_STOPPED = 4
EVT_SHOW_PASSKEY = 5
EVT_MATCH_PASSKEY = 6
EVT_AUTH_FAILED = 7
EVT_ADV_STARTED = 8
EVT_ADV_STOPPED = 9
_EVT_NAMES = {v: k for k, v in list(globals().items()) if k.startswith("EVT_")}

SCAN_ADDR_PUBLIC = 0
SCAN_FILTER_ALL = 0

SECURITY_MODE_1 = 1
SECURITY_MODE_2 = 2
SECURITY_LEVEL_1 = 1
SECURITY_LEVEL_2 = 2
SECURITY_LEVEL_3 = 3
SECURITY_LEVEL_4 = 4

ADV_CONN_UND = 0
ADV_CONN_DIR = 1
ADV_SCAN_UND = 2
ADV_UNCN_UND = 3
ADV_SCAN_RSP = 4

CAP_DISPLAY_ONLY = 0
CAP_DISPLAY_YES_NO = 1
CAP_KB_ONLY = 2
CAP_NONE = 3
CAP_KB_DISPLAY = 4

AUTH_NO_BOND = 0
AUTH_BOND = 1
AUTH_MITM = 2
AUTH_SC = 4
AUTH_KEYPRESS = 8

KEY_ENC = 1
KEY_ID = 2
KEY_CSR = 4
KEY_LNK = 8

#: Names ``from wireless.ble import *`` and the shim export: constants, classes, functions.
CONSTANT_NAMES = tuple(k for k, v in list(globals().items()) if k.isupper() and not k.startswith("_")
                       and type(v) is int)

# -- limits ------------------------------------------------------------------------------------

#: Advertising interval bounds of legacy advertising (Core spec Vol 6 Part B 4.4.2.2), ms.
ADV_INTERVAL_MIN_MS = 20
ADV_INTERVAL_MAX_MS = 10240
#: Interval when ``advertising()`` was never called: the nRF5 SDK template's APP_ADV_INTERVAL
#: (64 x 0.625 ms), which Zerynth's nrf52 driver uses, ms.
ADV_INTERVAL_DEFAULT_MS = 40
#: Scan interval/window bounds (Core spec Vol 4 Part E 7.8.10), ms.
SCAN_INTERVAL_MIN_MS = 2.5
SCAN_INTERVAL_MAX_MS = 10240
#: Key size bounds of SMP pairing (Core spec Vol 3 Part H 2.3.4), bytes.
KEY_SIZE_MIN = 7
KEY_SIZE_MAX = 16
#: Largest 6-digit passkey.
PASSKEY_MAX = 999999
#: Legacy advertising payload, bytes.
ADV_PAYLOAD_MAX = _adv.LEGACY_MAX
#: Value bytes of one characteristic (the board's attribute buffer), bytes.
VALUE_MAX = P.LIMITS["MAX_ATTR_LEN"]
#: GAP device name, bytes.
NAME_MAX = P.LIMITS["MAX_NAME"]
#: Characteristic User Description descriptor (Assigned Numbers), holding ``descriptor``.
USER_DESCRIPTION_UUID = 0x2901

_CFG = P.CONSTANTS["config"]
_PASSKEY = P.CONSTANTS["passkey_action"]
_FLAG = P.CONSTANTS["flag"]
#: Zerynth permission bits that are GATT properties (same bit values as the protocol's).
_PROPERTY_BITS = BROADCAST | READ | WRITE_WO | WRITE | NOTIFY | INDICATE | WRITE_SIGNED

#: The drivers Zerynth has, by the name ``init_driver`` takes; how each gives passkeys to
#: EVT_SHOW_PASSKEY / EVT_MATCH_PASSKEY: nrf52_ble a 6-character str, esp32ble an int.
DRIVERS = ("nrf52", "esp32")

#: The key ZerynthBle is attached under in a board's session.
LAYER = "zerynth"
DEFAULT_PORT = ble_session.DEFAULT_PORT


class BleError(RuntimeError):
    """A board refused a wireless.ble operation (Zerynth's drivers raise RuntimeError). Carries
    the board's status code and name and the operation."""

    def __init__(self, op: str, status: int, status_name: str, message: str) -> None:
        super().__init__(f"{op}: {status_name} ({status}): {message}")
        self.op, self.status, self.status_name = op, status, status_name


# -- argument checks -----------------------------------------------------------------------------

def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


def _int_in(value: Any, what: str, low: float, high: float, unit: str = "") -> int:
    _int(value, what)
    if not low <= value <= high:
        raise ValueError(f"{what} must be {low}..{high}{unit}, not {value}")
    return value


def _data(value: Any, what: str) -> bytes:
    """str (UTF-8) or bytes-like -> bytes, as Zerynth's drivers take payloads."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def _addr(value: Any, what: str = "addr") -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be 6 bytes, not {type(value).__name__}")
    raw = bytes(value)
    if len(raw) != _address.ADDR_LEN:
        raise TypeError(f"{what} must be {_address.ADDR_LEN} bytes, not {len(raw)}")
    return raw


def hex_byte(x: int, prefix: str = "0x") -> str:
    """Zerynth's ``hex(x, prefix)``: uppercase digits, zero-padded to 2, 4 or 8 digits by the
    value's range, two's complement for negative values (its builtins' hex)."""
    x = _int(x, "hex() argument")
    if x >= 0:
        digits = 2 if x <= 0xFF else 4 if x <= 0xFFFF else 8
    else:
        digits = 2 if x >= -0x80 else 4 if x >= -0x8000 else 8
    return prefix + format(x & ((1 << (4 * digits)) - 1), f"0{digits}X")


def btos(addr: Any) -> str:
    """Bytes of an address (or any byte sequence, a packet) as ``C0:FF:EE:00:00:01``. An int
    gives its own hex (the nrf52 Scanner example passes the scan type and RSSI)."""
    if isinstance(addr, int) and not isinstance(addr, bool):
        return hex_byte(addr, "")
    if isinstance(addr, str):
        raise TypeError("btos() takes bytes, not str")
    try:
        return ":".join(hex_byte(x, "") for x in addr)
    except TypeError:
        raise TypeError(f"btos() takes a sequence of ints (bytes), not {type(addr).__name__}") from None


# -- Service and Characteristic --------------------------------------------------------------------

class Characteristic:
    """A GATT characteristic: 16-bit ``uuid``, ``permission`` (READ | WRITE | NOTIFY | ...),
    value ``size`` in bytes, ``descriptor`` text (its User Description), value ``type``."""

    def __init__(self, uuid: Any, permission: Any, size: Any, descriptor: Any, type: Any = NUMBER) -> None:  # noqa: A002
        _int_in(uuid, "uuid", 0, 0xFFFF)
        _int(permission, "permission")
        if permission & ~_PROPERTY_BITS:
            raise ValueError(f"permission has unknown bits: {permission & ~_PROPERTY_BITS:#x}")
        _int_in(size, "size", 1, VALUE_MAX, " bytes")
        if descriptor is not None and not isinstance(descriptor, str):
            raise TypeError(f"descriptor must be a str, not {builtins_type(descriptor).__name__}")
        _int_in(type, "type", NUMBER, BYTES)
        self.uuid = uuid
        self.permission = permission
        self.size = size
        self.descriptor = descriptor
        self.type = type
        self.fn: Optional[Callable[[int, Any], Any]] = None
        #: The uuid of the service it was added to (Zerynth sets it in add_characteristic).
        self.service: Optional[int] = None
        self._value = bytes(size)          # the value until the board holds it
        self._ble: Optional["ZerynthBle"] = None
        self._attr: Optional[_gatt.Characteristic] = None

    def __repr__(self) -> str:
        return f"<Characteristic 0x{self.uuid:04X}>"

    def set_value(self, value: Any) -> None:
        """Set the value (converted by type and size); notified or indicated to a central that
        subscribed."""
        data = self._encode(value)
        ble = self._ble
        if ble is None or self._attr is None:
            self._value = data
            return
        ble._set_value(self, data)

    def get_value(self) -> Any:
        """The value, converted by type and size."""
        ble = self._ble
        if ble is None or self._attr is None:
            return self.convert(self._value)
        return self.convert(ble._get_value(self))

    def set_callback(self, fn: Any) -> None:
        """``fn(status, value)`` on every write by the central (status WRITE)."""
        if fn is not None and not callable(fn):
            raise TypeError(f"callback must be callable, not {builtins_type(fn).__name__}")
        self.fn = fn

    def convert(self, value: Any) -> Any:
        """Bytes of the value -> int (NUMBER, little endian), str (STRING) or bytes (BYTES)."""
        raw = bytes(value)
        if self.type == NUMBER:
            return int.from_bytes(raw[:self.size].ljust(self.size, b"\0"), "little")
        if self.type == STRING:
            return raw.decode("utf-8", "replace")
        return raw

    def _encode(self, value: Any) -> bytes:
        if self.type == NUMBER:
            _int(value, "value of a NUMBER characteristic")
            bits = 8 * self.size
            if not -(1 << (bits - 1)) <= value < (1 << bits):
                raise ValueError(f"value {value} does not fit {self.size} byte(s)")
            return (value & ((1 << bits) - 1)).to_bytes(self.size, "little")
        if self.type == STRING and not isinstance(value, str) and not isinstance(
                value, (bytes, bytearray, memoryview)):
            raise TypeError(f"value of a STRING characteristic must be str, not {builtins_type(value).__name__}")
        data = _data(value, "value")
        if len(data) > self.size:
            raise ValueError(f"value of {len(data)} bytes is over the characteristic's size {self.size}")
        return data

    def _flags(self, level: int) -> int:
        flags = self.permission & _PROPERTY_BITS
        # The GAP security level guards the value (docs/zerynth.md): level 2 encrypted,
        # 3 authenticated, 4 authenticated on an LE Secure Connections link.
        if level >= SECURITY_LEVEL_2:
            flags |= _FLAG["READ_ENCRYPTED"] | _FLAG["WRITE_ENCRYPTED"]
        if level >= SECURITY_LEVEL_3:
            flags |= _FLAG["READ_AUTHENTICATED"] | _FLAG["WRITE_AUTHENTICATED"]
        if level >= SECURITY_LEVEL_4:
            flags |= _FLAG["READ_LESC"] | _FLAG["WRITE_LESC"]
        return flags


builtins_type = type


class Service:
    """A primary GATT service: 16-bit ``uuid``, or 128-bit when ``base_uuid`` (16 bytes, little
    endian) is given, its 13th and 14th bytes replaced by ``uuid``."""

    def __init__(self, uuid: Any, base_uuid: Any = None) -> None:
        _int_in(uuid, "uuid", 0, 0xFFFF)
        if base_uuid is not None:
            if not isinstance(base_uuid, (bytes, bytearray)):
                raise TypeError(f"base_uuid must be 16 bytes, not {builtins_type(base_uuid).__name__}")
            if len(base_uuid) != 16:
                raise ValueError(f"base_uuid must be 16 bytes, not {len(base_uuid)}")
        self.uuid = uuid
        self.base_uuid = base_uuid
        self.chs: dict[int, Characteristic] = {}

    def __repr__(self) -> str:
        return f"<Service {self.full_uuid()}>"

    def add_characteristic(self, ch: Any) -> None:
        if not isinstance(ch, Characteristic):
            raise TypeError(f"add_characteristic() takes a Characteristic, not {builtins_type(ch).__name__}")
        self.chs[ch.uuid] = ch
        ch.service = self.uuid

    def full_uuid(self) -> UUID:
        """The service's UUID (blebridge.ble.uuid)."""
        if self.base_uuid is None:
            return UUID.from_int(self.uuid, 16)
        le = bytearray(self.base_uuid)
        le[12:14] = self.uuid.to_bytes(2, "little")
        return UUID.from_bytes_le(bytes(le))


# -- one board -------------------------------------------------------------------------------------

class ZerynthBle:
    """``wireless.ble`` on one board. Make it with :func:`open_ble` or a driver's ``init()``."""

    # The module's constants and classes, so an instance reads as the module does.
    Service = Service
    Characteristic = Characteristic
    btos = staticmethod(btos)

    def __init__(self, session: ble_session.Session, driver: str) -> None:
        if driver not in DRIVERS:
            raise ValueError(f"driver must be one of {', '.join(DRIVERS)}, not {driver!r}")
        self.session = session
        self.board = session.board
        self.driver = driver
        self.closed = False
        self.lost: Optional[BaseException] = None
        self._lock = threading.RLock()
        self.services: dict[int, Service] = {}
        self.callbacks: dict[int, Callable[[Any], Any]] = {}
        self.started = False
        self._db = _gatt.GattDatabase()
        self._chars_by_handle: dict[int, Characteristic] = {}
        # GAP, security, advertising and scanning settings (Zerynth's defaults).
        self._name = ""
        self._appearance = 0
        self._security = (SECURITY_MODE_1, SECURITY_LEVEL_1)
        self._connection = (400, 650, 0, 4000)
        self._scheme = AUTH_SC
        self._bonding = AUTH_NO_BOND
        self._passkey = 0
        self._adv = dict(interval=ADV_INTERVAL_DEFAULT_MS, timeout=0, payload=b"", scanrsp=b"",
                         mode=ADV_CONN_UND)
        self._scan = dict(interval=10, window=10, duplicates=0, active=0)
        #: The central connected to us: (conn handle, address most significant byte first).
        self._conn: Optional[tuple[int, bytes]] = None
        #: Connection waiting for confirm_passkey (numeric comparison).
        self._confirm_conn: Optional[int] = None
        # The drivers run callbacks on their own thread (_event_loop); so do we, so a callback
        # that sleeps (the Alerts_Secure_2 example waits 5 s for a button) holds back only
        # other callbacks, never the board's events.
        self._events: "queue.Queue[Optional[tuple[Callable[..., Any], tuple, str]]]" = queue.Queue()
        self._thread = threading.Thread(target=self._event_loop, name=f"zerynth-ble {self.board.spec}",
                                         daemon=True)
        self._thread.start()
        self._sub = session.subscribe(self._on_event)
        session.subscribe_lost(self._on_lost)
        self._call(calls.ble_active, "init", on=True)

    def __repr__(self) -> str:
        return f"<wireless.ble ({self.driver}) on {getattr(self.board, 'spec', self.board)!r}>"

    def __getattr__(self, name: str) -> Any:
        # The module's constants (ble.READ, ble.EVT_CONNECTED...) on the instance too.
        if name in CONSTANT_NAMES:
            return globals()[name]
        raise AttributeError(f"'wireless.ble' has no attribute {name!r}")

    # -- plumbing --------------------------------------------------------------------------------

    def _call(self, call: Callable[..., Any], op: str, **args: Any) -> Any:
        if self.lost is not None:
            raise self.lost
        if self.closed:
            raise RuntimeError(f"{self!r} is closed")
        try:
            return call(self.board, **args)
        except BoardError as exc:
            raise BleError(op, exc.status, exc.status_name, str(exc)) from None

    def close(self) -> None:
        """Stop using the board (closing it if this object's session opened it)."""
        if self.closed:
            return
        self.closed = True
        self.session.unsubscribe(self._sub)
        self.session.unsubscribe_lost(self._on_lost)
        self._events.put(None)
        _LAYER.forget(self)

    def _on_lost(self, exc: BaseException) -> None:
        from ..errors import BoardReset
        if not isinstance(exc, BoardReset):
            self.lost = exc
        handler = _lost_handler
        if handler is not None:
            handler(exc)

    # -- GAP and security ------------------------------------------------------------------------

    def gap(self, name: Any, appearance: Any = 0, security: Any = (SECURITY_MODE_1, SECURITY_LEVEL_1),
            connection: Any = (400, 650, 0, 4000)) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {builtins_type(name).__name__}")
        if len(name.encode("utf-8")) > NAME_MAX:
            raise ValueError(f"name of {len(name.encode('utf-8'))} bytes is over {NAME_MAX}")
        _int_in(appearance, "appearance", 0, 0xFFFF)
        mode, level = _pair(security, "security")
        _int_in(mode, "security mode", SECURITY_MODE_1, SECURITY_MODE_2)
        _int_in(level, "security level", SECURITY_LEVEL_1,
                SECURITY_LEVEL_4 if mode == SECURITY_MODE_1 else SECURITY_LEVEL_2)
        conn = _tuple_of_ints(connection, 4, "connection")
        if not 7.5 <= conn[0] <= conn[1] <= 4000:
            raise ValueError(f"connection intervals must be 7.5 <= min <= max <= 4000 ms, not {conn[:2]}")
        _int_in(conn[2], "slave latency", 0, 499)
        _int_in(conn[3], "supervision timeout", 100, 32000, " ms")
        self._call(calls.config_set, "gap", key=_CFG["GAP_NAME"], value=name)
        self._call(calls.config_set, "gap", key=_CFG["APPEARANCE"], value=appearance)
        with self._lock:
            self._name, self._appearance = name, appearance
            self._security, self._connection = (mode, level), conn

    def security(self, capabilities: Any = CAP_NONE, bonding: Any = AUTH_NO_BOND, scheme: Any = AUTH_SC,
                 key_size: Any = 16, initiator: Any = KEY_ENC | KEY_ID, responder: Any = KEY_ENC | KEY_ID,
                 oob: Any = 0, passkey: Any = 0) -> None:
        _int_in(capabilities, "capabilities", CAP_DISPLAY_ONLY, CAP_KB_DISPLAY)
        _int_in(bonding, "bonding", AUTH_NO_BOND, AUTH_BOND)
        _int_in(scheme, "scheme", 0, AUTH_MITM | AUTH_SC | AUTH_KEYPRESS)
        if scheme & 1:
            raise ValueError("scheme is an or of AUTH_MITM, AUTH_SC, AUTH_KEYPRESS")
        _int_in(key_size, "key_size", KEY_SIZE_MIN, KEY_SIZE_MAX, " bytes")
        _int_in(initiator, "initiator", 0, KEY_ENC | KEY_ID | KEY_CSR | KEY_LNK)
        _int_in(responder, "responder", 0, KEY_ENC | KEY_ID | KEY_CSR | KEY_LNK)
        _int(oob, "oob")
        if oob:
            raise ValueError("oob pairing is not supported (Zerynth: not supported yet)")
        _int_in(passkey, "passkey", 0, PASSKEY_MAX)
        self._call(calls.config_set, "security", key=_CFG["IO"], value=capabilities)
        self._call(calls.config_set, "security", key=_CFG["BOND"], value=bonding == AUTH_BOND)
        self._call(calls.config_set, "security", key=_CFG["MITM"], value=bool(scheme & AUTH_MITM))
        self._call(calls.config_set, "security", key=_CFG["LE_SECURE"], value=bool(scheme & AUTH_SC))
        with self._lock:
            self._scheme, self._bonding, self._passkey = scheme, bonding, passkey

    def bonded(self) -> list[bytes]:
        """Addresses (6 bytes, most significant first) of the bonded peers."""
        return [_address.from_wire(addr) for _, addr in self.session.secret_store().peers()]

    def remove_bonded(self, addr: Any) -> None:
        self.session.secret_store().forget_peer(_address.to_wire(_addr(addr)))

    def confirm_passkey(self, confirmed: Any) -> None:
        """Answer EVT_MATCH_PASSKEY: nonzero goes on with pairing, zero aborts it. Without a
        pairing waiting for it (answered already, timed out, disconnected) it does nothing, as
        on Zerynth."""
        _int(confirmed, "confirmed")
        with self._lock:
            conn, self._confirm_conn = self._confirm_conn, None
        if conn is None:
            return
        try:
            calls.gap_passkey(self.board, conn=conn, action=_PASSKEY["NUMERIC_COMPARISON"],
                              passkey=1 if confirmed else 0)
        except BoardError:
            pass    # the board gave up on the pairing first (its question timeout)

    # -- GATT ------------------------------------------------------------------------------------

    def add_service(self, service: Any) -> None:
        if not isinstance(service, Service):
            raise TypeError(f"add_service() takes a Service, not {builtins_type(service).__name__}")
        with self._lock:
            self.services[service.uuid] = service
            started = self.started
        if started:
            self._register()

    def add_callback(self, evt: Any, callback: Any) -> None:
        _int_in(evt, "evt", EVT_CONNECTED, EVT_ADV_STOPPED)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, not {builtins_type(callback).__name__}")
        with self._lock:
            self.callbacks[evt] = callback

    def start(self) -> None:
        """Register the services with the board (values set before are their initial values)."""
        self._register()
        with self._lock:
            self.started = True

    def _register(self) -> None:
        with self._lock:
            services = list(self.services.values())
            level = self._security[1] if self._security[0] == SECURITY_MODE_1 else SECURITY_LEVEL_1
        defined: list[_gatt.Service] = []
        pairs: list[tuple[Characteristic, _gatt.Characteristic]] = []
        for s in services:
            chars = []
            for ch in s.chs.values():
                # Registered before (on this board): the board's value survives registering again.
                initial = self._get_value(ch) if ch._attr is not None and ch._ble is self else ch._value
                dscs = []
                if ch.descriptor:
                    text = ch.descriptor.encode("utf-8")[:VALUE_MAX]
                    dscs.append(_gatt.Descriptor(bytes(UUID.from_int(USER_DESCRIPTION_UUID, 16)),
                                                 _FLAG["READ"], len(text), text))
                attr = _gatt.Characteristic(bytes(UUID.from_int(ch.uuid, 16)), ch._flags(level),
                                            ch.size, initial, dscs)
                chars.append(attr)
                pairs.append((ch, attr))
            defined.append(_gatt.Service(bytes(s.full_uuid()), chars))
        self._db.register(defined, lambda form: self._call(calls.gatts_register_services, "start",
                                                            services=form))
        with self._lock:
            self._chars_by_handle = {}
            for ch, attr in pairs:
                ch._ble, ch._attr = self, attr
                self._chars_by_handle[attr.handle] = ch

    def _set_value(self, ch: Characteristic, data: bytes) -> None:
        assert ch._attr is not None
        self._call(calls.gatts_write, "set_value", value_handle=ch._attr.handle, data=data,
                   send_update=True)

    def _get_value(self, ch: Characteristic) -> bytes:
        assert ch._attr is not None
        return bytes(self._call(calls.gatts_read, "get_value", value_handle=ch._attr.handle))

    # -- advertising -----------------------------------------------------------------------------

    def advertising(self, interval: Any, timeout: Any = 0, payload: Any = "", scanrsp: Any = "",
                    mode: Any = ADV_CONN_UND) -> None:
        _int_in(interval, "interval", ADV_INTERVAL_MIN_MS, ADV_INTERVAL_MAX_MS, " ms")
        _int_in(timeout, "timeout", 0, 0xFFFFFFFF, " ms")
        adv = _data(payload, "payload")
        rsp = _data(scanrsp, "scanrsp")
        for what, data in (("payload", adv), ("scanrsp", rsp)):
            if len(data) > ADV_PAYLOAD_MAX:
                raise ValueError(f"{what} of {len(data)} bytes is over {ADV_PAYLOAD_MAX}")
        _int(mode, "mode")
        if mode not in (ADV_CONN_UND, ADV_SCAN_UND, ADV_UNCN_UND):
            raise ValueError("mode must be ADV_CONN_UND, ADV_SCAN_UND or ADV_UNCN_UND")
        with self._lock:
            self._adv = dict(interval=interval, timeout=timeout, payload=adv, scanrsp=rsp, mode=mode)

    def _default_payload(self) -> bytes:
        """Flags, the name (shortened to fit) and the appearance when set: the drivers' payload
        when advertising() was given none."""
        fields = [_adv.flags_field(_adv.FLAGS_GENERAL_LE_ONLY)]
        if self._appearance:
            fields.append(_adv.appearance_field(self._appearance))
        used = sum(len(f) for f in fields)
        name = self._name.encode("utf-8")
        if name:
            room = ADV_PAYLOAD_MAX - used - 2
            fields.insert(1, _adv.name_field(name) if len(name) <= room
                          else _adv.structure(_adv.NAME_SHORT, name[:max(room, 0)]))
        return b"".join(fields)

    def start_advertising(self) -> None:
        with self._lock:
            adv = dict(self._adv)
            payload = adv["payload"] or self._default_payload()
        mode = adv["mode"]
        self._call(calls.gap_advertise_start, "start_advertising", interval_us=adv["interval"] * 1000,
                   adv_data=payload, resp_data=adv["scanrsp"], connectable=mode == ADV_CONN_UND,
                   scannable=mode in (ADV_CONN_UND, ADV_SCAN_UND), extended=False,
                   timeout_ms=adv["timeout"])
        self._emit(EVT_ADV_STARTED, None)

    def stop_advertising(self) -> None:
        self._call(calls.gap_advertise_stop, "stop_advertising")
        self._emit(EVT_ADV_STOPPED, None)

    # -- scanning --------------------------------------------------------------------------------

    def scanning(self, interval: Any = 10, window: Any = 10, duplicates: Any = 0,
                 filter: Any = SCAN_FILTER_ALL, addr: Any = SCAN_ADDR_PUBLIC, active: Any = 0) -> None:  # noqa: A002
        for what, v in (("interval", interval), ("window", window)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{what} must be a number of ms, not {builtins_type(v).__name__}")
            if not SCAN_INTERVAL_MIN_MS <= v <= SCAN_INTERVAL_MAX_MS:
                raise ValueError(f"{what} must be {SCAN_INTERVAL_MIN_MS}..{SCAN_INTERVAL_MAX_MS} ms, not {v}")
        if window > interval:
            raise ValueError(f"window ({window} ms) must not be longer than interval ({interval} ms)")
        _int(duplicates, "duplicates")
        _int(filter, "filter")
        _int(addr, "addr")
        _int(active, "active")
        with self._lock:
            self._scan = dict(interval=interval, window=window, duplicates=duplicates, active=active)

    def start_scanning(self, duration: Any = 1000) -> None:
        """Scan for ``duration`` ms (0: until stop_scanning)."""
        _int_in(duration, "duration", 0, 0xFFFFFFFF, " ms")
        with self._lock:
            scan = dict(self._scan)
        self._call(calls.gap_scan_start, "start_scanning", duration_ms=duration,
                   interval_us=int(scan["interval"] * 1000), window_us=int(scan["window"] * 1000),
                   active=bool(scan["active"]), filter_duplicates=not scan["duplicates"])
        self._emit(EVT_SCAN_STARTED, None)

    def stop_scanning(self) -> None:
        self._call(calls.gap_scan_stop, "stop_scanning")

    # -- events ------------------------------------------------------------------------------------

    def _emit(self, evt: int, value: Any) -> None:
        fn = self.callbacks.get(evt)
        if fn is not None:
            self._events.put((fn, (value,), _EVT_NAMES[evt]))

    def _event_loop(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            fn, args, what = item
            try:
                fn(*args)
            except Exception:
                # Zerynth's drivers swallow it; the script's author wants to see it.
                print(f"wireless.ble: the callback of {what} raised:", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)

    def _on_event(self, ev: Any) -> None:
        handler = _HANDLERS.get(ev.code)
        if handler is not None:
            handler(self, ev.typed)

    def _ev_connect(self, f: Any) -> None:
        addr = _address.from_wire(f.addr)
        with self._lock:
            self._conn = (int(f.conn), addr)
        self._emit(EVT_CONNECTED, addr)

    def _ev_disconnect(self, f: Any) -> None:
        addr = _address.from_wire(f.addr)
        with self._lock:
            if self._conn is not None and self._conn[0] == int(f.conn):
                self._conn = None
            if self._confirm_conn == int(f.conn):
                self._confirm_conn = None
        self._emit(EVT_DISCONNECTED, addr)

    def _ev_scan_result(self, f: Any) -> None:
        self._emit(EVT_SCAN_REPORT, (int(f.adv_type), int(f.addr_type), int(f.rssi), bytes(f.adv_data),
                                     _address.from_wire(f.addr)))

    def _ev_scan_done(self, f: Any) -> None:
        self._emit(EVT_SCAN_STOPPED, None)

    def _ev_advertise_done(self, f: Any) -> None:
        self._emit(EVT_ADV_STOPPED, None)

    def _ev_gatts_write(self, f: Any) -> None:
        ch = self._chars_by_handle.get(int(f.value_handle))
        if ch is None or ch.fn is None:
            return
        self._events.put((ch.fn, (WRITE, ch.convert(bytes(f.data))), f"the characteristic {ch.uuid:#06x}"))

    def _ev_passkey(self, f: Any) -> None:
        action, conn, passkey = int(f.action), int(f.conn), int(f.passkey)
        if action == _PASSKEY["DISPLAY"]:
            with self._lock:
                shown = self._passkey or passkey
            try:
                calls.gap_passkey(self.board, conn=conn, action=action, passkey=shown)
            except BoardError as exc:
                # The pairing is gone (peer left, question timed out): nothing to show.
                print(f"wireless.ble: passkey not shown, the board refused it: {exc}", file=sys.stderr)
                return
            self._emit(EVT_SHOW_PASSKEY, self._passkey_value(shown))
        elif action == _PASSKEY["NUMERIC_COMPARISON"]:
            with self._lock:
                self._confirm_conn = conn
            self._emit(EVT_MATCH_PASSKEY, self._passkey_value(passkey))
        # INPUT: Zerynth has no call to enter a passkey; the board's timeout rejects the pairing.

    def _passkey_value(self, passkey: int) -> Any:
        return f"{passkey:06d}" if self.driver == "nrf52" else passkey

    def _ev_encryption(self, f: Any) -> None:
        with self._lock:
            ours = self._conn is not None and self._conn[0] == int(f.conn)
            mitm = bool(self._scheme & AUTH_MITM)
        if not ours:
            return
        if not f.encrypted or (mitm and not f.authenticated):
            self._emit(EVT_AUTH_FAILED, None)


_HANDLERS: dict[int, Callable[[ZerynthBle, Any], None]] = {
    P.EV_CENTRAL_CONNECT: ZerynthBle._ev_connect,
    P.EV_CENTRAL_DISCONNECT: ZerynthBle._ev_disconnect,
    P.EV_SCAN_RESULT: ZerynthBle._ev_scan_result,
    P.EV_SCAN_DONE: ZerynthBle._ev_scan_done,
    P.EV_ADVERTISE_DONE: ZerynthBle._ev_advertise_done,
    P.EV_GATTS_WRITE: ZerynthBle._ev_gatts_write,
    P.EV_PASSKEY_ACTION: ZerynthBle._ev_passkey,
    P.EV_ENCRYPTION_UPDATE: ZerynthBle._ev_encryption,
}


def _pair(value: Any, what: str) -> tuple[int, int]:
    t = _tuple_of_ints(value, 2, what)
    return t[0], t[1]


def _tuple_of_ints(value: Any, n: int, what: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{what} must be a tuple of {n} ints, not {builtins_type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"{what} must be a tuple of {n} ints, not {len(value)}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{what} must be a tuple of {n} numbers, not {builtins_type(v).__name__}")
    return tuple(value)


# -- boards: the default one, and others by port ---------------------------------------------------

#: ZerynthBle per board, and the one ``wireless.ble``'s functions use (set by a driver's init()).
_LAYER = ble_session.Layer(LAYER, lambda ble: not ble.closed)
_lost_handler: Optional[Callable[[BaseException], Any]] = None


def set_lost_handler(fn: Optional[Callable[[BaseException], Any]]) -> None:
    """Call ``fn(exc)`` when a board of this layer is lost (``blebridge run`` ends the run)."""
    global _lost_handler
    _lost_handler = fn


default_port = ble_session.default_port


def open_ble(board: Any = None, driver: str = "nrf52") -> ZerynthBle:
    """``wireless.ble`` on ``board``: a port (``"sim:alice"``, ``/dev/ttyACM0``), an open
    :class:`blebridge.Board`, or None (the default port). One object per board; the first call
    opens (and resets) a port's board and fixes the driver."""
    return _LAYER.on(board, lambda s: ZerynthBle(s, driver))


def init_driver(driver: str) -> ZerynthBle:
    """A driver's ``init()``: ``wireless.ble`` goes to the default board through ``driver``."""
    ble = open_ble(None, driver)
    _LAYER.set_default(ble)
    return ble


def default() -> ZerynthBle:
    """The board ``wireless.ble``'s functions use; RuntimeError before a driver's init()."""
    ble = _LAYER.current()
    if ble is None:
        raise RuntimeError("wireless.ble has no driver: call bledrv.init() first (from "
                           "nordic.nrf52_ble import nrf52_ble as bledrv, or from "
                           "espressif.esp32ble import esp32ble as bledrv)")
    return ble


def close_all() -> None:
    """Close every board of this layer."""
    _LAYER.close_all()
