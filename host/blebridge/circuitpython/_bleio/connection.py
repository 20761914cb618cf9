"""``_bleio.Connection``: one per connection the board has, from either side; kept once it
ends (``connected`` False, its operations raise ConnectionError)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from .errors import ConnectionError, check_float
from .uuid import UUID

if TYPE_CHECKING:
    from .adapters import Adapter

#: ATT header bytes of a notification / write command (opcode + handle) taken from the MTU.
ATT_HEADER = 3
#: Connection interval unit, ms (Core spec Vol 6 Part B 4.5.1).
INTERVAL_UNIT_MS = 1.25

_GONE = "Connection has been disconnected and can no longer be used. Create a new connection."


class Connection:
    """A BLE connection to another device (no constructor: ``Adapter.connect``, or
    ``Adapter.connections`` for connections a peer made)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("cannot create '_bleio.Connection' instances: use Adapter.connect()")

    @classmethod
    def _of(cls, adapter: "Adapter", handle: int, address: Any, central: bool) -> "Connection":
        self = object.__new__(cls)
        self._adapter = adapter
        self._handle = handle
        self._address = address
        self._central = central          # we connected (we are the central)
        self._connected = True
        self._interval_ms: float = 0.0
        #: An interval change was asked for and the board has not reported its outcome yet.
        self._interval_updating = False
        #: ENCRYPTION_UPDATE events seen (a pairing's end, whatever its outcome).
        self._security_updates = 0
        #: value handle -> functions called with each notification/indication (buffers).
        self._listeners: dict[int, tuple[Callable[[bytes, int], Any], ...]] = {}
        return self

    def _ensure_connected(self) -> None:
        if not self._connected:
            raise ConnectionError(_GONE)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def paired(self) -> bool:
        """True once the link is encrypted (paired, or re-encrypted with a bond)."""
        if not self._connected:
            return False
        c = self._adapter.session.connection(self._handle)
        return bool(c is not None and c.encrypted)

    def pair(self, bond: bool = True) -> None:
        """Pair (and bond: ``bond=False`` is not implemented, as on CircuitPython)."""
        if not bond:
            raise NotImplementedError("bond=False")
        self._ensure_connected()
        self._adapter._pair(self)

    def discover_remote_services(self, service_uuids_whitelist: Optional[Iterable[UUID]] = None) -> tuple:
        """Discover the peer's services (all, or those whitelisted), with their
        characteristics and descriptors."""
        self._ensure_connected()
        uuids = None
        if service_uuids_whitelist is not None:
            uuids = list(service_uuids_whitelist)
            for u in uuids:
                if not isinstance(u, UUID):
                    raise TypeError("non-UUID found in service_uuids_whitelist")
        return self._adapter._discover(self, uuids)

    @property
    def connection_interval(self) -> float:
        """Time between connection events, ms (a multiple of 1.25 ms); 0.0 until the board
        reported it (docs/circuitpython.md). After a change, waits for its outcome (as
        CircuitPython does)."""
        self._ensure_connected()
        self._adapter._wait_interval(self)
        return self._interval_ms

    @connection_interval.setter
    def connection_interval(self, value: float) -> None:
        interval = check_float(value, "connection_interval")
        self._ensure_connected()
        self._adapter._set_interval(self, interval)

    @property
    def max_packet_length(self) -> int:
        """Data bytes in one notification or write without response: ATT MTU - 3."""
        self._ensure_connected()
        c = self._adapter.session.connection(self._handle)
        mtu = c.mtu if c is not None else 23
        return mtu - ATT_HEADER

    #: CircuitPython 5's name of max_packet_length.
    attribute = max_packet_length

    def disconnect(self) -> None:
        """Disconnect; nothing if already disconnected."""
        if self._connected:
            self._adapter._disconnect(self)

    def _add_listener(self, handle: int, fn: Callable[[bytes, int], Any]) -> None:
        self._listeners[handle] = (*self._listeners.get(handle, ()), fn)

    def _remove_listener(self, handle: int, fn: Callable[[bytes, int], Any]) -> None:
        rest = tuple(f for f in self._listeners.get(handle, ()) if f is not fn)
        if rest:
            self._listeners[handle] = rest
        else:
            self._listeners.pop(handle, None)

    def __repr__(self) -> str:
        return f"<Connection {self._handle} {self._address!r}{'' if self._connected else ' closed'}>"
