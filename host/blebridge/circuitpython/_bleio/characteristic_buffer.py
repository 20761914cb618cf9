"""``_bleio.CharacteristicBuffer``: a byte FIFO of a characteristic's incoming values (peer
writes to a local one, notifications of a remote one), filled on the board's event thread.
Bytes that do not fit are dropped, as CircuitPython's ring buffer drops them."""
from __future__ import annotations

import threading
import time
from typing import Any, Optional

from .characteristic import Characteristic
from .errors import ConnectionError, check_float_non_negative, check_int_min, check_type

#: Longest a waiting read goes without checking that the board is still there, s.
LOST_CHECK_S = 0.5
_DEINITED = "Object has been deinitialized and can no longer be used. Create a new object."


class CharacteristicBuffer:
    """``CharacteristicBuffer(characteristic, *, timeout=1, buffer_size=64)``: ``timeout``
    seconds to wait for the bytes asked for."""

    def __init__(self, characteristic: Characteristic, *, timeout: float = 1,
                 buffer_size: int = 64) -> None:
        check_type(characteristic, Characteristic, "characteristic")
        self._timeout = check_float_non_negative(timeout, "timeout")
        self._size = check_int_min(buffer_size, 1, "buffer_size")
        self._characteristic: Optional[Characteristic] = characteristic
        self._adapter = characteristic._service._adapter
        self._buf = bytearray()
        self._cond = threading.Condition()
        service = characteristic._service
        self._connection = service._connection if service.remote else None
        if self._connection is not None:
            self._connection._add_listener(characteristic._handle, self._on_value)
        else:
            characteristic._add_listener(self._on_value)
            service._adapter._sync_gatt()   # registered now: peers may write from here on

    def _on_value(self, data: bytes, conn: int) -> None:
        with self._cond:
            room = self._size - len(self._buf)
            if room > 0:
                self._buf += data[:room]
                self._cond.notify_all()

    def _check(self) -> None:
        if self._characteristic is None:
            raise ValueError(_DEINITED)

    def _connected(self) -> bool:
        return self._connection is None or self._connection._connected

    def _check_connected(self) -> None:
        if not self._connected():
            raise ConnectionError("Not connected")

    def _take(self, n: int) -> bytes:
        """Up to ``n`` bytes, waiting up to the timeout for all ``n``."""
        self._check()
        self._check_connected()
        if n <= 0:
            return b""
        deadline = time.monotonic() + self._timeout
        adapter = self._adapter
        with self._cond:
            while len(self._buf) < n:
                if adapter._lost is not None:
                    raise adapter._lost
                if not self._connected():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, LOST_CHECK_S))
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out

    def read(self, nbytes: Optional[int] = None) -> Optional[bytes]:
        """At most ``nbytes`` bytes; without it, everything that arrives until a timeout
        passes with nothing more."""
        if nbytes is not None:
            return self._take(int(nbytes))
        out = bytearray()
        while True:
            chunk = self._take(max(self._size, 1))
            if not chunk:
                return bytes(out)
            out += chunk

    def readinto(self, buf: Any, nbytes: Optional[int] = None) -> Optional[int]:
        """Read into ``buf`` (at most len(buf), or ``nbytes``, bytes); the count."""
        mv = memoryview(buf).cast("B")
        n = len(mv) if nbytes is None else min(len(mv), int(nbytes))
        data = self._take(n)
        mv[:len(data)] = data
        return len(data)

    def readline(self) -> bytes:
        """A line, up to and including b"\\n", or what came before a timeout."""
        out = bytearray()
        while True:
            b = self._take(1)
            if not b:
                return bytes(out)
            out += b
            if b == b"\n":
                return bytes(out)

    @property
    def in_waiting(self) -> int:
        self._check()
        with self._cond:
            n = len(self._buf)
        if n == 0:
            self._check_connected()
        return n

    def reset_input_buffer(self) -> None:
        self._check()
        with self._cond:
            self._buf.clear()

    def write(self, data: Any) -> int:
        raise NotImplementedError("CharacteristicBuffer writing not provided")

    def deinit(self) -> None:
        c = self._characteristic
        if c is None:
            return
        if self._connection is not None:
            self._connection._remove_listener(c._handle, self._on_value)
        else:
            c._remove_listener(self._on_value)
        self._characteristic = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> "CharacteristicBuffer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.deinit()
