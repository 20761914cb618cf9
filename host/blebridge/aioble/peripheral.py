"""aioble's broadcaster and peripheral roles: ``advertise``."""
from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING, Any, Optional

from .. import calls
from .. import protocol as P
from ..ble import advertising as _ad
from ..ble import status as _status
from ..errors import BoardError
from .core import DeviceDisconnectedError, as_uuid, check_timeout, data_bytes

if TYPE_CHECKING:
    from .device import DeviceConnection
    from .radio import Radio

#: Legacy advertising / scan response payload, bytes.
ADV_PAYLOAD_MAX = _ad.LEGACY_MAX


def _append(adv: bytearray, resp: Optional[bytearray], ad_type: int, value: bytes) -> Optional[bytearray]:
    """Add one AD structure to the advertising data, else to the scan response (aioble's
    packing: in order, each where it first fits)."""
    data = _ad.structure(ad_type, value)
    if len(data) + len(adv) <= ADV_PAYLOAD_MAX:
        adv += data
        return resp
    if len(data) + (len(resp) if resp else 0) <= ADV_PAYLOAD_MAX:
        if resp is None:
            resp = bytearray()
        resp += data
        return resp
    raise ValueError(f"Advertising payload too long: no room left for AD type 0x{ad_type:02x} "
                     f"({len(data)} bytes) in {ADV_PAYLOAD_MAX}-byte advertising data or scan response")


def build_payloads(limited_disc: bool = False, br_edr: bool = False, name: Any = None,
                   services: Any = None, appearance: int = 0,
                   manufacturer: Any = None) -> tuple[bytes, Optional[bytes]]:
    """(adv_data, resp_data) from advertise()'s keyword arguments."""
    adv = bytearray()
    flags = (_ad.FLAG_LE_LIMITED if limited_disc else _ad.FLAG_LE_GENERAL) + (0x18 if br_edr else _ad.FLAG_BREDR_NOT_SUPPORTED)
    resp = _append(adv, None, _ad.FLAGS, bytes((flags,)))
    if services:
        uuids = [as_uuid(u, "services item") for u in services]
        for size, ad_type in ((2, _ad.UUID16_COMPLETE), (4, _ad.UUID32_COMPLETE), (16, _ad.UUID128_COMPLETE)):
            raw = b"".join(bytes(u) for u in uuids if len(bytes(u)) == size)
            if raw:
                resp = _append(adv, resp, ad_type, raw)
    if name:
        resp = _append(adv, resp, _ad.NAME_COMPLETE, data_bytes(name, "name"))
    if appearance:
        if isinstance(appearance, bool) or not isinstance(appearance, int) or not 0 <= appearance <= 0xFFFF:
            raise ValueError(f"appearance must be a 16-bit int, not {appearance!r}")
        resp = _append(adv, resp, _ad.APPEARANCE, struct.pack("<H", appearance))
    if manufacturer:
        try:
            company, data = manufacturer
        except (TypeError, ValueError):
            raise ValueError(f"manufacturer must be (company_id, data), not {manufacturer!r}") from None
        if isinstance(company, bool) or not isinstance(company, int) or not 0 <= company <= 0xFFFF:
            raise ValueError(f"manufacturer company_id must be a 16-bit int, not {company!r}")
        resp = _append(adv, resp, _ad.MANUFACTURER, struct.pack("<H", company) + data_bytes(data, "manufacturer data"))
    return bytes(adv), None if resp is None else bytes(resp)


async def advertise(radio: "Radio", interval_us: int, adv_data: Any = None, resp_data: Any = None,
                    connectable: bool = True, limited_disc: bool = False, br_edr: bool = False,
                    name: Any = None, services: Any = None, appearance: int = 0,
                    manufacturer: Any = None, timeout_ms: Optional[int] = None) -> "DeviceConnection":
    """Advertise until a central connects (its DeviceConnection) or timeout_ms passes
    (asyncio.TimeoutError); advertising stops either way, and when the task is cancelled."""
    if isinstance(interval_us, bool) or not isinstance(interval_us, int) or interval_us <= 0:
        raise ValueError(f"advertise(): interval_us must be a positive int (µs), not {interval_us!r}")
    timeout_s = check_timeout(timeout_ms)
    if not adv_data and not resp_data:
        adv, resp = build_payloads(limited_disc, br_edr, name, services, appearance, manufacturer)
    else:
        adv = b"" if adv_data is None else data_bytes(adv_data, "adv_data")
        resp = None if resp_data is None else data_bytes(resp_data, "resp_data")
        for what, value in (("adv_data", adv), ("resp_data", resp)):
            if value is not None and len(value) > ADV_PAYLOAD_MAX:
                raise ValueError(f"advertise(): {what} of {len(value)} bytes is over {ADV_PAYLOAD_MAX}")
    radio.ensure_active()
    with radio.lock:
        # A central that connected and left before anyone asked is no news.
        while radio.incoming and not radio.incoming[0].is_connected():
            radio.incoming.popleft()
    try:
        calls.gap_advertise_start(radio.board, interval_us=interval_us, adv_data=adv,
                                  resp_data=resp or b"", connectable=bool(connectable), scannable=True,
                                  extended=False, timeout_ms=0)
    except BoardError as exc:
        if exc.status in (P.STATUS["EINVAL"], P.STATUS["BAD_ARG_TYPE"]):
            raise ValueError(f"advertise(): the board refused the parameters: {exc}") from None
        raise
    radio.advertising = True
    stops = radio.stops
    try:
        # Not ended by ADVERTISE_DONE: a board may report it for the connection before the
        # connection itself, and this advertising has no timeout on the board.
        await radio.wait(lambda: radio.incoming or radio.stops != stops, timeout_s)
    except BaseException as exc:
        _stop_advertising(radio)
        if isinstance(exc, asyncio.TimeoutError):
            raise asyncio.TimeoutError(f"advertise(): no central connected within {timeout_ms} ms") from None
        raise
    with radio.lock:
        if not radio.incoming:
            # stop() or a board reset ended it.
            raise DeviceDisconnectedError("advertise(): advertising ended before a central connected")
        conn = radio.incoming.popleft()
    radio.advertising = False
    return conn


def _stop_advertising(radio: "Radio") -> None:
    radio.advertising = False
    if radio.lost is not None:
        return
    try:
        calls.gap_advertise_stop(radio.board)
    except BoardError as exc:
        if exc.status not in _status.NOTHING_TO_STOP and exc.status != P.STATUS["NOT_ACTIVE"]:
            raise
