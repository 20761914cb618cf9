"""Zerynth's ``wireless.ble_beacons``: Eddystone (UID, URL, TLM) and iBeacon payloads.

The encoders return a whole legacy advertising payload (flags included), as Zerynth's do: it is
what ``ble.advertising(payload=...)`` sends as it is. The decoders take a scan report's packet.
Eddystone frames: github.com/google/eddystone (eddystone-uid, -url, -tlm); iBeacon: Apple's
Proximity Beacon Specification. Differences from Zerynth's module (docs/zerynth.md): no debug
prints, negative TLM temperatures encoded and decoded as signed 8.8 fixed point, URL bytes
13 (".gov") decoded (Zerynth's decoder is off by one there), bad input raises ValueError/TypeError.
"""
from __future__ import annotations

from typing import Any, Optional, Union

from ..ble import advertising as _adv

EDDY_UID = 0x00
EDDY_URL = 0x10
EDDY_LTM = 0x20     # Zerynth's name of the TLM (telemetry) frame type

#: Eddystone's 16-bit service UUID, little endian as it appears in the payload.
_EDDY_SERVICE = b"\xaa\xfe"
#: Flags (LE general, no BR/EDR), then the complete list of 16-bit service UUIDs: Eddystone.
_EDDY_HEAD = _adv.flags_field(_adv.FLAGS_GENERAL_LE_ONLY) + _adv.structure(_adv.UUID16_COMPLETE, _EDDY_SERVICE)
#: Offset of the frame type in a payload: head, service data length, type, UUID.
_FRAME_AT = len(_EDDY_HEAD) + 4

#: URL scheme prefixes, by code (eddystone-url).
_URL_SCHEMES = ("http://www.", "https://www.", "http://", "https://")
#: URL expansions, by code.
_URL_SUFFIXES = (".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
                 ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov")
#: Bytes of an Eddystone-UID namespace and instance.
_NAMESPACE_LEN = 10
_INSTANCE_LEN = 6
#: Apple's company identifier (as Zerynth writes it: the two bytes in payload order).
IBEACON_MANUFACTURER = 0x4C00
#: Flags, then manufacturer data of 26 bytes: company, type 0x02, length 0x15.
_IBEACON_HEAD = _adv.flags_field(_adv.FLAGS_GENERAL_LE_ONLY) + b"\x1a\xff\x4c\x00\x02\x15"
_IBEACON_LEN = 30
#: TLM temperature "not supported" (-128.0 in 8.8 fixed point).
_TLM_NO_TEMPERATURE = 0x8000


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be {low}..{high}, not {value}")
    return value


def _power(txpower: Any) -> int:
    """TX power at 0 m, dBm, as the signed byte the frames carry."""
    return _int(txpower, "txpower", -128, 127) & 0xFF


def _signed(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


def _eddystone(frame: bytes) -> bytearray:
    service_data = _adv.structure(_adv.SERVICE_DATA_16, _EDDY_SERVICE + frame)
    packet = bytearray(_EDDY_HEAD + service_data)
    if len(packet) > _adv.LEGACY_MAX:
        raise ValueError(f"the Eddystone payload is {len(packet)} bytes, over {_adv.LEGACY_MAX}")
    return packet


def _padded(value: Any, size: int, what: str) -> bytes:
    return _bytes(value, what)[:size].ljust(size, b"\0")


def eddy_encode_uid(namespace: Any, instance: Any, txpower: Any) -> bytearray:
    """An Eddystone-UID payload: ``namespace`` (10 bytes) and ``instance`` (6 bytes), cut or
    zero-padded on the right; ``txpower`` in dBm at 0 m."""
    frame = bytes([EDDY_UID, _power(txpower)]) + _padded(namespace, _NAMESPACE_LEN, "namespace") \
        + _padded(instance, _INSTANCE_LEN, "instance") + b"\0\0"
    return _eddystone(frame)


def eddy_encode_url(url: Any, txpower: Any) -> bytearray:
    """An Eddystone-URL payload of ``url`` (scheme and common endings compressed)."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    body = url
    code = b""
    for i in (1, 0, 3, 2):      # "https://www." before "https://", before "http://"
        if body.startswith(_URL_SCHEMES[i]):
            code, body = bytes([i]), body[len(_URL_SCHEMES[i]):]
            break
    if not code:
        raise ValueError(f"url must start with http:// or https://, not {url!r}")
    out = bytearray(code)
    i = 0
    while i < len(body):
        for n, suffix in enumerate(_URL_SUFFIXES):
            if body.startswith(suffix, i):
                out.append(n)
                i += len(suffix)
                break
        else:
            ch = body[i]
            if not 0x21 <= ord(ch) <= 0x7E:
                raise ValueError(f"url has a character Eddystone-URL cannot carry: {ch!r}")
            out.append(ord(ch))
            i += 1
    return _eddystone(bytes([EDDY_URL, _power(txpower)]) + bytes(out))


def eddy_encode_tlm(battery: Any, temperature: Any, count: Any, time: Any) -> bytearray:
    """An Eddystone-TLM payload (unencrypted): ``battery`` in mV, ``temperature`` in °C (None:
    not measured), ``count`` advertised PDUs, ``time`` in s since power-up."""
    _int(battery, "battery", 0, 0xFFFF)
    if temperature is None:
        temp = _TLM_NO_TEMPERATURE
    else:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise TypeError(f"temperature must be a number or None, not {type(temperature).__name__}")
        if not -128 <= temperature < 128:
            raise ValueError(f"temperature must be -128..127.99 °C, not {temperature}")
        temp = round(temperature * 256) & 0xFFFF
    _int(count, "count", 0, 0xFFFFFFFF)
    if isinstance(time, bool) or not isinstance(time, (int, float)) or time < 0:
        raise ValueError(f"time must be a number of seconds >= 0, not {time!r}")
    tenths = int(time * 10) & 0xFFFFFFFF       # 0.1 s units
    frame = bytes([EDDY_LTM, 0]) + battery.to_bytes(2, "big") + temp.to_bytes(2, "big") \
        + count.to_bytes(4, "big") + tenths.to_bytes(4, "big")
    return _eddystone(frame)


def _packet(packet: Any) -> bytes:
    if not isinstance(packet, (bytes, bytearray, memoryview)):
        raise TypeError(f"packet must be bytes, not {type(packet).__name__}")
    return bytes(packet)


def eddy_decode_type(packet: Any) -> int:
    """EDDY_UID, EDDY_URL or EDDY_LTM; ValueError if ``packet`` is not an Eddystone payload."""
    raw = _packet(packet)
    if not raw.startswith(_EDDY_HEAD) or len(raw) <= _FRAME_AT:
        raise ValueError("not an Eddystone packet")
    return raw[_FRAME_AT]


def eddy_decode(packet: Any) -> tuple:
    """(namespace, instance, txpower) of UID, (url, txpower) of URL, (battery, temperature,
    count, time) of TLM; ValueError if ``packet`` is none of these."""
    raw = _packet(packet)
    etype = eddy_decode_type(raw)
    frame = raw[_FRAME_AT:]
    try:
        if etype == EDDY_UID:
            return (frame[2:2 + _NAMESPACE_LEN], frame[12:12 + _INSTANCE_LEN], _signed(frame[1]))
        if etype == EDDY_URL:
            scheme = frame[2]
            url = _URL_SCHEMES[scheme] if scheme < len(_URL_SCHEMES) else chr(scheme)
            for b in frame[3:]:
                url += _URL_SUFFIXES[b] if b < len(_URL_SUFFIXES) else chr(b)
            return url, _signed(frame[1])
        if etype == EDDY_LTM:
            battery = int.from_bytes(frame[2:4], "big")
            temp_raw = int.from_bytes(frame[4:6], "big")
            temperature: Optional[float] = None
            if temp_raw != _TLM_NO_TEMPERATURE:
                temperature = (temp_raw - 0x10000 if temp_raw & 0x8000 else temp_raw) / 256
            count = int.from_bytes(frame[6:10], "big")
            time = int.from_bytes(frame[10:14], "big")
            if len(frame) < 14:
                raise IndexError
            return battery, temperature, count, time / 10
    except IndexError:
        raise ValueError("Eddystone packet too short") from None
    raise ValueError(f"unknown Eddystone frame type {etype:#04x}")


def ibeacon_encode(uuid: Union[str, bytes, bytearray], major: Any, minor: Any, txpower: Any,
                   manufacturer: Any = IBEACON_MANUFACTURER) -> bytearray:
    """An iBeacon payload: ``uuid`` (16 bytes, or its text with or without dashes; cut or
    zero-padded), ``major``, ``minor``, ``txpower`` in dBm at 1 m, the company bytes."""
    if isinstance(uuid, str):
        digits = uuid.replace("-", "")
        try:
            uuid_bytes = bytes.fromhex(digits)
        except ValueError:
            raise ValueError(f"uuid is not hexadecimal text: {uuid!r}") from None
    elif isinstance(uuid, (bytes, bytearray, memoryview)):
        uuid_bytes = bytes(uuid)
    else:
        raise TypeError(f"uuid must be str or bytes, not {type(uuid).__name__}")
    uuid_bytes = uuid_bytes[:16].ljust(16, b"\0")
    _int(major, "major", 0, 0xFFFF)
    _int(minor, "minor", 0, 0xFFFF)
    _int(manufacturer, "manufacturer", 0, 0xFFFF)
    packet = bytearray(_IBEACON_HEAD + uuid_bytes + major.to_bytes(2, "big") + minor.to_bytes(2, "big")
                       + bytes([_power(txpower)]))
    packet[5:7] = manufacturer.to_bytes(2, "big")
    return packet


def ibeacon_decode(packet: Any) -> tuple:
    """(uuid, major, minor, txpower) of an iBeacon payload; ValueError if it is not one."""
    raw = _packet(packet)
    if len(raw) != _IBEACON_LEN or not raw.startswith(_IBEACON_HEAD):
        raise ValueError("not an iBeacon packet")
    return raw[9:25], int.from_bytes(raw[25:27], "big"), int.from_bytes(raw[27:29], "big"), _signed(raw[29])
