"""``_bleio.PacketBuffer``: a characteristic's incoming packets (peer writes to a local one,
notifications/indications of a remote one) kept whole in a FIFO of ``buffer_size`` packets,
and packet writes out (a local one notifies/indicates, a remote one is written).

Incoming packets that do not fit push the oldest out, as CircuitPython's ring buffer does.
A local PacketBuffer's writes go to every subscribed peer (the board's send_update), where
CircuitPython sends to the first peer that subscribed (docs/circuitpython.md).
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Optional

from .characteristic import INDICATE, NOTIFY, WRITE, WRITE_NO_RESPONSE, Characteristic
from .errors import BluetoothError, buffer, check_int, check_int_min, check_type

_DEINITED = "Object has been deinitialized and can no longer be used. Create a new object."
#: Largest packet, bytes (CircuitPython: BLE_GATTS_VAR_ATTR_LEN_MAX - 3).
MAX_PACKET_SIZE = 512 - 3
#: Bytes of the length CircuitPython stores before each buffered packet.
_LENGTH_BYTES = 2
#: Longest wait for the previous write of a client PacketBuffer before the next, s.
WRITE_WAIT_S = 10.0


class PacketBuffer:
    """``PacketBuffer(characteristic, *, buffer_size, max_packet_size=None)``."""

    def __init__(self, characteristic: Characteristic, *, buffer_size: int,
                 max_packet_size: Optional[int] = None) -> None:
        check_type(characteristic, Characteristic, "characteristic")
        buffer_size = check_int_min(buffer_size, 1, "buffer_size")
        if max_packet_size is None:
            max_packet_size = characteristic.max_length
        else:
            max_packet_size = check_int_min(check_int(max_packet_size, "max_packet_size"), 1,
                                            "max_packet_size")
        self._max_packet = min(max_packet_size, MAX_PACKET_SIZE)
        self._characteristic: Optional[Characteristic] = characteristic
        service = characteristic._service
        self._client = service.remote
        self._connection = service._connection if self._client else None
        props = characteristic._props
        incoming = props & (WRITE | WRITE_NO_RESPONSE)
        outgoing = props & (NOTIFY | INDICATE)
        if self._client:
            incoming, outgoing = outgoing, incoming
        self._incoming, self._outgoing = incoming, outgoing
        self._capacity = buffer_size * (_LENGTH_BYTES + self._max_packet)
        self._packets: deque[bytes] = deque()
        self._filled = 0
        self._lock = threading.Lock()
        self._last_write: Optional[Future] = None
        if self._client:
            self._connection._add_listener(characteristic._handle, self._on_packet)
            if incoming:
                # Notifications are preferred when both are offered (as CircuitPython).
                characteristic.set_cccd(notify=bool(incoming & NOTIFY), indicate=not incoming & NOTIFY)
        else:
            characteristic._add_listener(self._on_packet)
            service._adapter._sync_gatt()   # registered now: peers may write from here on

    def _on_packet(self, data: bytes, conn: int) -> None:
        if not self._incoming:
            return
        cost = _LENGTH_BYTES + len(data)
        if cost > self._capacity:
            return
        with self._lock:
            while self._filled + cost > self._capacity:
                self._filled -= _LENGTH_BYTES + len(self._packets.popleft())
            self._packets.append(data)
            self._filled += cost

    def _check(self) -> Characteristic:
        c = self._characteristic
        if c is None:
            raise ValueError(_DEINITED)
        return c

    def readinto(self, buf: Any) -> int:
        """One packet into ``buf``: its length, or 0 if none is buffered. ValueError (and the
        packet dropped) if it is longer than ``buf``."""
        self._check()
        mv = memoryview(buf).cast("B")
        with self._lock:
            if not self._packets:
                return 0
            packet = self._packets.popleft()
            self._filled -= _LENGTH_BYTES + len(packet)
        if len(packet) > len(mv):
            raise ValueError(f"Buffer too short by {len(packet) - len(mv)} bytes")
        mv[:len(packet)] = packet
        return len(packet)

    def write(self, data: Any, *, header: Any = None) -> int:
        """Send ``header`` + ``data`` as one packet; the bytes written (0 when not connected)."""
        c = self._check()
        payload = buffer(data, "data")
        head = b"" if header is None else buffer(header, "header")
        if not self._outgoing:
            raise BluetoothError("Writes not supported on Characteristic")
        limit = self._outgoing_length()
        if limit < 0:
            return 0
        total = len(head) + len(payload)
        if total > limit:
            raise ValueError("Total data to write is larger than outgoing_packet_length")
        if total > self._max_packet:
            raise ValueError("Total data to write is larger than max_packet_size")
        adapter = c._service._adapter
        packet = head + payload
        if self._client:
            last, self._last_write = self._last_write, None
            if last is not None:
                adapter._wait_write(last, WRITE_WAIT_S)
            if not self._connection._connected:
                return 0
            self._last_write = adapter._remote_write_start(
                self._connection, c._handle, packet, response=not self._outgoing & WRITE_NO_RESPONSE)
        else:
            adapter._local_write(c._gatt, packet, notify=True)
        return total

    def _incoming_length(self) -> int:
        c = self._check()
        if self._client and c._props & (NOTIFY | INDICATE):
            if self._connection._connected:
                return self._connection.max_packet_length
            return -1
        return c._max_length

    def _outgoing_length(self) -> int:
        c = self._check()
        if not self._client and c._props & (NOTIFY | INDICATE):
            conns = [x for x in c._service._adapter.connections]
            if not conns:
                return -1
            mtu_payload = min(x.max_packet_length for x in conns)
            return min(mtu_payload, self._max_packet, c._max_length)
        if self._client:
            if self._connection._connected:
                return min(self._connection.max_packet_length, self._max_packet)
        return min(c._max_length, self._max_packet)

    @property
    def incoming_packet_length(self) -> int:
        n = self._incoming_length()
        if n < 0:
            raise ValueError("No connection: length cannot be determined")
        return n

    #: CircuitPython 5's name of incoming_packet_length.
    packet_size = incoming_packet_length

    @property
    def outgoing_packet_length(self) -> int:
        n = self._outgoing_length()
        if n < 0:
            raise ValueError("No connection: length cannot be determined")
        return n

    def deinit(self) -> None:
        c = self._characteristic
        if c is None:
            return
        if self._client:
            self._connection._remove_listener(c._handle, self._on_packet)
        else:
            c._remove_listener(self._on_packet)
        self._characteristic = None
