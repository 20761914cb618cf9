"""``_bleio.ScanEntry`` and ``_bleio.ScanResults``: scan reports, filtered as CircuitPython does
(prefixes, minimum RSSI) into a buffer of ``buffer_size`` bytes, each entry counted as
CircuitPython's ring buffer stores it (ENTRY_OVERHEAD + its data); an entry that does not fit
is dropped, as there."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from .address import Address
from .errors import buffer

#: Bytes CircuitPython's scan buffer spends per entry beside its data: type (1), ticks (8),
#: rssi (1), address (6), address type (1), length (2) (shared-module/_bleio/ScanResults.c).
ENTRY_OVERHEAD = 19


def data_matches(data: bytes, prefixes: bytes, any_: bool) -> bool:
    """CircuitPython's bleio_scanentry_data_matches: ``prefixes`` is length-prefixed byte
    strings, each compared to the start (type byte on) of the AD structures of ``data``."""
    if not prefixes:
        return True
    if not data:
        return False
    i = 0
    while i < len(prefixes):
        plen = prefixes[i]
        i += 1
        prefix = prefixes[i:i + plen]
        matched = False
        j = 0
        while j < len(data):
            slen = data[j]
            j += 1
            if slen == 0:
                break
            if slen >= plen and data[j:j + plen] == prefix:
                if any_:
                    return True
                matched = True
                break
            j += slen
        if not matched and not any_:
            return False
        i += plen
    return not any_


class ScanEntry:
    """One advertisement or scan response (no constructor: made by ScanResults)."""

    __slots__ = ("_address", "_data", "_rssi", "_connectable", "_scan_response", "_time")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("cannot create '_bleio.ScanEntry' instances")

    @classmethod
    def _of(cls, address: Address, data: bytes, rssi: int, connectable: bool,
            scan_response: bool) -> "ScanEntry":
        self = object.__new__(cls)
        self._address, self._data, self._rssi = address, data, rssi
        self._connectable, self._scan_response = connectable, scan_response
        self._time = time.monotonic()
        return self

    @property
    def address(self) -> Address:
        return self._address

    @property
    def advertisement_bytes(self) -> bytes:
        return self._data

    @property
    def rssi(self) -> int:
        return self._rssi

    @property
    def connectable(self) -> bool:
        return self._connectable

    @property
    def scan_response(self) -> bool:
        return self._scan_response

    def matches(self, prefixes: Any, *, match_all: bool = True, **kwargs: Any) -> bool:
        """True if the data matches all ``prefixes`` (``match_all``) or any of them.
        CircuitPython 5's keyword ``all`` is accepted too."""
        if kwargs:
            if set(kwargs) != {"all"}:
                raise TypeError(f"unexpected keyword argument '{next(k for k in kwargs if k != 'all')}'")
            match_all = kwargs["all"]
        return data_matches(self._data, buffer(prefixes, "prefixes"), not match_all)

    def __repr__(self) -> str:
        return f"<ScanEntry {self._address!r} rssi={self._rssi}>"


class ScanResults:
    """Iterates over the scan's entries; blocks while none is buffered and the scan goes on
    (no constructor: ``Adapter.start_scan``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("cannot create '_bleio.ScanResults' instances")

    @classmethod
    def _of(cls, buffer_size: int, prefixes: bytes, minimum_rssi: int,
            lost: Any) -> "ScanResults":
        self = object.__new__(cls)
        self._cond = threading.Condition()
        self._entries: deque[ScanEntry] = deque()
        self._filled = 0
        self._size = buffer_size
        self._prefixes = prefixes
        self._minimum_rssi = minimum_rssi
        self._done = False
        self._lost = lost        # () -> exception of a lost board, or None
        return self

    def _append(self, entry: ScanEntry) -> None:
        """On the board's thread: filter and buffer one report."""
        if entry._rssi < self._minimum_rssi:
            return
        if not data_matches(entry._data, self._prefixes, True):
            return
        cost = ENTRY_OVERHEAD + len(entry._data)
        with self._cond:
            if self._done or self._filled + cost > self._size:
                return
            self._entries.append(entry)
            self._filled += cost
            self._cond.notify_all()

    def _finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify_all()

    @property
    def done(self) -> bool:
        return self._done

    def __iter__(self) -> "ScanResults":
        return self

    def __next__(self) -> ScanEntry:
        with self._cond:
            while not self._entries and not self._done:
                exc = self._lost()
                if exc is not None:
                    raise exc
                self._cond.wait(0.5)
            if not self._entries:
                exc = self._lost()
                if exc is not None:
                    raise exc
                raise StopIteration
            entry = self._entries.popleft()
            self._filled -= ENTRY_OVERHEAD + len(entry._data)
            return entry
