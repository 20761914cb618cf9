"""aioble's observer and central roles: ``scan``, ``ScanResult`` (``Device.connect`` is in device.py)."""
from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Any, Iterator, Optional

from .. import calls
from .. import protocol as P
from ..ble import advertising as _ad
from ..ble import status as _status
from ..errors import BoardError
from .core import as_uuid, check_timeout
from .device import Device

if TYPE_CHECKING:
    from .radio import Radio

_ADV = P.CONSTANTS["adv_type"]
_ADV_IND, _ADV_SCAN_IND, _ADV_NONCONN_IND = _ADV["ADV_IND"], _ADV["ADV_SCAN_IND"], _ADV["ADV_NONCONN_IND"]
_SCAN_RSP, _EXT_ADV = _ADV["SCAN_RSP"], _ADV["EXT_ADV"]

#: scan() defaults when interval_us / window_us are None (aioble's), µs.
DEFAULT_SCAN_INTERVAL_US = 1_280_000
DEFAULT_SCAN_WINDOW_US = 11_250
#: How long cancelling a scan may take before the board is asked again whether it scans (s).
SCAN_STOP_TIMEOUT_S = 5.0


async def cancel_scan(radio: "Radio") -> None:
    """End the scan running on ``radio`` (a connect or a new scan needs the radio)."""
    scanner = radio.scanner
    if scanner is not None:
        await scanner.cancel()


class ScanResult:
    """A device seen by a scan; the same object comes again when its data changes."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.adv_data: Optional[bytes] = None
        self.resp_data: Optional[bytes] = None
        self.rssi: Optional[int] = None
        self.connectable = False

    def _update(self, adv_type: int, rssi: int, adv_data: bytes, active: bool) -> bool:
        """Take one report; True if it told something new."""
        updated = False
        if rssi != self.rssi:
            self.rssi = rssi
            updated = True
        if adv_type in (_ADV_IND, _ADV_NONCONN_IND, _EXT_ADV):
            if adv_data != self.adv_data:
                self.adv_data = adv_data
                updated = True
            self.connectable = adv_type != _ADV_NONCONN_IND
        elif adv_type == _ADV_SCAN_IND:
            if adv_data != self.adv_data and self.resp_data:
                updated = True
            self.adv_data = adv_data
            self.connectable = False
        elif adv_type == _SCAN_RSP and adv_data and active:
            # A passive scan asks for no scan response (the simulated controller sends one
            # anyway: SIMULATOR-NOTES.md).
            if adv_data != self.resp_data:
                self.resp_data = adv_data
                updated = True
        return updated

    def __str__(self) -> str:
        return "Scan result: {} {}".format(self.device, self.rssi)

    __repr__ = __str__

    def _fields(self, *types: int) -> Iterator[bytes]:
        for payload in (self.adv_data, self.resp_data):
            if payload:
                for t, value in _ad.structures(payload):
                    if t in types:
                        yield value

    def name(self) -> Optional[str]:
        """The complete (else shortened) local name, or None."""
        for value in self._fields(_ad.NAME_COMPLETE, _ad.NAME_SHORT):
            return value.decode("utf-8", "replace")
        return None

    def services(self) -> Iterator[Any]:
        """Each advertised service UUID (16, 32, then 128-bit lists), as bluetooth.UUID."""
        for size, types in ((2, (_ad.UUID16_INCOMPLETE, _ad.UUID16_COMPLETE)),
                            (4, (_ad.UUID32_INCOMPLETE, _ad.UUID32_COMPLETE)),
                            (16, (_ad.UUID128_INCOMPLETE, _ad.UUID128_COMPLETE))):
            for value in self._fields(*types):
                for i in range(0, len(value) - size + 1, size):
                    yield as_uuid(value[i:i + size])

    def manufacturer(self, filter: Optional[int] = None) -> Iterator[tuple[int, bytes]]:  # noqa: A002 - aioble's name
        """Each (company_id, data) of the manufacturer specific data; only ``filter``'s if given."""
        if filter is not None and (isinstance(filter, bool) or not isinstance(filter, int)):
            raise TypeError(f"filter must be a company identifier (int) or None, not {type(filter).__name__}")
        for value in self._fields(_ad.MANUFACTURER):
            if len(value) < 2:
                continue
            company = struct.unpack_from("<H", value)[0]
            if filter is None or company == filter:
                yield (company, value[2:])


class scan:   # noqa: N801 - aioble's name
    """``async with aioble.scan(duration_ms, ...) as scanner: async for result in scanner:``

    duration_ms 0 scans until the context ends."""

    def __init__(self, duration_ms: int, interval_us: Optional[int] = None,
                 window_us: Optional[int] = None, active: bool = False, *,
                 radio: Optional["Radio"] = None) -> None:
        for name, value in (("duration_ms", duration_ms), ("interval_us", interval_us),
                            ("window_us", window_us)):
            if value is None and name != "duration_ms":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"scan(): {name} must be a non-negative int, not {value!r}")
        interval = interval_us or DEFAULT_SCAN_INTERVAL_US
        window = window_us or DEFAULT_SCAN_WINDOW_US
        if window > interval:
            raise ValueError(f"scan(): window_us {window} is longer than interval_us {interval}")
        self._radio = radio
        self._duration_ms = duration_ms
        self._interval_us = interval
        self._window_us = window
        self._active = bool(active)
        self._queue: deque[tuple[int, bytes, int, int, bytes]] = deque()
        self._done = False
        self._results: dict[tuple[int, bytes], ScanResult] = {}

    async def __aenter__(self) -> "scan":
        if self._radio is None:
            from .radio import default
            self._radio = default()
        radio = self._radio
        radio.ensure_active()
        await cancel_scan(radio)
        radio.scanner = self
        try:
            calls.gap_scan_start(radio.board, duration_ms=self._duration_ms, interval_us=self._interval_us,
                                 window_us=self._window_us, active=self._active, filter_duplicates=False)
        except BoardError as exc:
            radio.scanner = None
            self._done = True
            if exc.status in (P.STATUS["EINVAL"], P.STATUS["BAD_ARG_TYPE"]):
                raise ValueError(f"scan(): the board refused the parameters: {exc}") from None
            raise
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._radio is not None and self._radio.scanner is self:
            await self.cancel()

    def __aiter__(self) -> "scan":
        if self._radio is None or self._radio.scanner is not self and not self._done:
            raise RuntimeError("iterate a scan inside `async with aioble.scan(...) as scanner`")
        return self

    async def __anext__(self) -> ScanResult:
        radio = self._radio
        assert radio is not None
        while True:
            if radio.scanner is not self and not self._queue:
                raise StopAsyncIteration   # cancelled (a connect, another scan, stop())
            while self._queue:
                addr_type, addr, adv_type, rssi, adv_data = self._queue.popleft()
                key = (addr_type, addr)
                result = self._results.get(key)
                if result is None:
                    result = self._results[key] = ScanResult(Device(addr_type, addr, radio=radio))
                if result._update(adv_type, rssi, adv_data, self._active):
                    return result
            if self._done:
                if radio.scanner is self:
                    radio.scanner = None
                raise StopAsyncIteration
            await radio.wait(lambda: self._queue or self._done or radio.scanner is not self)

    async def cancel(self) -> None:
        """Stop scanning (waits for the board to say the scan ended)."""
        radio = self._radio
        if radio is None or self._done:
            if radio is not None and radio.scanner is self:
                radio.scanner = None
            return
        try:
            calls.gap_scan_stop(radio.board)
        except BoardError as exc:
            if exc.status not in _status.NOTHING_TO_STOP and exc.status != P.STATUS["NOT_ACTIVE"]:
                raise
            self._done = True
        try:
            await radio.wait(lambda: self._done, check_timeout(SCAN_STOP_TIMEOUT_S * 1000))
        finally:
            self._done = True
            if radio.scanner is self:
                radio.scanner = None
