"""Advertising data (AD structures), API-neutral, both directions.

Advertising and scan response payloads are a run of AD structures (Core spec Vol 3 Part C 11):
one length byte (type + value), one type byte, the value. Reading: ``structures`` iterates
them, ``find``/``find_all`` pick a type, ``name``/``service_uuids``/``manufacturer_data``
decode the usual ones. Writing: ``structure`` and the ``*_field`` helpers make one, ``payload``
joins them and checks the length against the legacy limit (31 bytes) or a given one.
"""
from __future__ import annotations

import struct
from typing import Any, Iterable, Iterator, Optional, Union

from .. import protocol as P
from .uuid import UUID

#: Legacy advertising / scan response payload, bytes (BLE_HCI_MAX_ADV_DATA_LEN).
LEGACY_MAX = P.LIMITS["MAX_ADV_LEGACY"]
#: Extended advertising payload the protocol carries, bytes.
EXTENDED_MAX = P.LIMITS["MAX_ADV_EXT"]
#: Value bytes one AD structure can hold (its length byte counts the type byte too).
STRUCTURE_VALUE_MAX = 254

# AD types (Bluetooth Assigned Numbers, "Common Data Types").
FLAGS = 0x01
UUID16_INCOMPLETE = 0x02
UUID16_COMPLETE = 0x03
UUID32_INCOMPLETE = 0x04
UUID32_COMPLETE = 0x05
UUID128_INCOMPLETE = 0x06
UUID128_COMPLETE = 0x07
NAME_SHORT = 0x08
NAME_COMPLETE = 0x09
TX_POWER = 0x0A
SERVICE_DATA_16 = 0x16
APPEARANCE = 0x19
SERVICE_DATA_32 = 0x20
SERVICE_DATA_128 = 0x21
MANUFACTURER = 0xFF

# Flags bits (Core spec Supplement Part A 1.3).
FLAG_LE_LIMITED = 0x01
FLAG_LE_GENERAL = 0x02
FLAG_BREDR_NOT_SUPPORTED = 0x04
#: The usual flags of an LE-only peripheral: general discoverable, no BR/EDR.
FLAGS_GENERAL_LE_ONLY = FLAG_LE_GENERAL | FLAG_BREDR_NOT_SUPPORTED

#: Service UUID AD types by UUID size (bytes): (complete, incomplete).
_UUID_TYPES = {2: (UUID16_COMPLETE, UUID16_INCOMPLETE), 4: (UUID32_COMPLETE, UUID32_INCOMPLETE),
               16: (UUID128_COMPLETE, UUID128_INCOMPLETE)}
_UUID_SIZE_OF_TYPE = {t: size for size, types in _UUID_TYPES.items() for t in types}


def _bytes(data: Any, what: str) -> bytes:
    if isinstance(data, (str, int)):
        raise TypeError(f"{what} is a bytes-like object, not {type(data).__name__}")
    try:
        with memoryview(data) as mv:
            return mv.tobytes()
    except TypeError:
        raise TypeError(f"{what} is a bytes-like object, not {type(data).__name__}") from None


# -- reading -----------------------------------------------------------------------------------

def structures(data: Any, *, strict: bool = False) -> Iterator[tuple[int, bytes]]:
    """Each AD structure of ``data`` as (type, value), in order.

    A length byte of 0 ends the significant part (the rest is padding). A structure running
    past the end is dropped, or with ``strict`` a ValueError naming its offset.
    """
    raw = _bytes(data, "advertising data")
    i, n = 0, len(raw)
    while i < n:
        length = raw[i]
        if length == 0:
            return
        if i + 1 + length > n:
            if strict:
                raise ValueError(f"advertising data: the structure at byte {i} says {length} bytes "
                                 f"but only {n - i - 1} follow")
            return
        yield raw[i + 1], raw[i + 2:i + 1 + length]
        i += 1 + length


def find_all(data: Any, ad_type: int) -> list[bytes]:
    """The values of every AD structure of ``ad_type``, in order."""
    return [value for t, value in structures(data) if t == ad_type]


def find(data: Any, ad_type: int) -> Optional[bytes]:
    """The value of the first AD structure of ``ad_type``, or None."""
    for t, value in structures(data):
        if t == ad_type:
            return value
    return None


def name(data: Any) -> Optional[str]:
    """The complete local name, else the shortened one, else None (UTF-8, bad bytes replaced)."""
    value = find(data, NAME_COMPLETE)
    if value is None:
        value = find(data, NAME_SHORT)
    return None if value is None else value.decode("utf-8", "replace")


def flags(data: Any) -> Optional[int]:
    """The Flags value, or None."""
    value = find(data, FLAGS)
    return value[0] if value else None


def service_uuids(data: Any) -> list[UUID]:
    """Every service UUID listed (complete and incomplete lists, 16, 32 and 128 bits), in order.
    Bytes that do not fill a whole UUID at a list's end are ignored."""
    out: list[UUID] = []
    for t, value in structures(data):
        size = _UUID_SIZE_OF_TYPE.get(t)
        if size is None:
            continue
        for i in range(0, len(value) - size + 1, size):
            out.append(UUID.from_bytes_le(value[i:i + size]))
    return out


def manufacturer_data(data: Any) -> dict[int, bytes]:
    """Manufacturer specific data by company identifier (the value's first two bytes, little-endian).
    A structure too short to hold a company identifier is ignored."""
    out: dict[int, bytes] = {}
    for value in find_all(data, MANUFACTURER):
        if len(value) >= 2:
            out[struct.unpack_from("<H", value)[0]] = value[2:]
    return out


# -- writing -----------------------------------------------------------------------------------

def structure(ad_type: int, value: Any) -> bytes:
    """One AD structure: length, type, value."""
    if isinstance(ad_type, bool) or not isinstance(ad_type, int) or not 0 <= ad_type <= 0xFF:
        raise ValueError(f"an AD type is a byte, not {ad_type!r}")
    raw = _bytes(value, "an AD value")
    if len(raw) > STRUCTURE_VALUE_MAX:
        raise ValueError(f"an AD structure holds at most {STRUCTURE_VALUE_MAX} value bytes, "
                         f"not {len(raw)}")
    return bytes((len(raw) + 1, ad_type)) + raw


def flags_field(value: int = FLAGS_GENERAL_LE_ONLY) -> bytes:
    """The Flags structure (default: general discoverable, LE only)."""
    if not 0 <= value <= 0xFF:
        raise ValueError(f"flags are a byte, not {value!r}")
    return structure(FLAGS, bytes((value,)))


def name_field(local_name: Union[str, bytes], *, complete: bool = True) -> bytes:
    """The complete (or shortened) local name structure; a str is encoded as UTF-8."""
    raw = local_name.encode("utf-8") if isinstance(local_name, str) else _bytes(local_name, "a name")
    return structure(NAME_COMPLETE if complete else NAME_SHORT, raw)


def services_field(uuids: Iterable[Any], *, complete: bool = True) -> bytes:
    """Service UUID list structures, one per UUID size present (16, 32, 128 bits, in that order)."""
    by_size: dict[int, bytearray] = {}
    for u in uuids:
        value = u if isinstance(u, UUID) else UUID(u)
        by_size.setdefault(len(value.bytes_le), bytearray()).extend(value.bytes_le)
    return b"".join(structure(_UUID_TYPES[size][0 if complete else 1], bytes(by_size[size]))
                    for size in sorted(by_size))


def manufacturer_field(company_id: int, data: Any = b"") -> bytes:
    """The manufacturer specific data structure: company identifier (little-endian), then data."""
    if not 0 <= company_id <= 0xFFFF:
        raise ValueError(f"a company identifier has 16 bits, not {company_id!r}")
    return structure(MANUFACTURER, struct.pack("<H", company_id) + _bytes(data, "manufacturer data"))


def appearance_field(appearance: int) -> bytes:
    """The Appearance structure (16-bit category/subcategory, little-endian)."""
    if not 0 <= appearance <= 0xFFFF:
        raise ValueError(f"an appearance has 16 bits, not {appearance!r}")
    return structure(APPEARANCE, struct.pack("<H", appearance))


def check_length(data: Any, limit: int = LEGACY_MAX, what: str = "advertising data") -> bytes:
    """``data`` as bytes if it fits ``limit`` bytes; else ValueError naming both sizes."""
    raw = _bytes(data, what)
    if len(raw) > limit:
        raise ValueError(f"{what} of {len(raw)} bytes is over {limit}")
    return raw


def payload(*fields: Any, flags: Optional[int] = None, name: Union[str, bytes, None] = None,
            services: Iterable[Any] = (), appearance: Optional[int] = None,
            manufacturer: Optional[tuple[int, Any]] = None, limit: int = LEGACY_MAX) -> bytes:
    """An advertising payload: flags, name, services, appearance, manufacturer data (those
    given, in that order), then ``fields`` (ready AD structures); ValueError over ``limit``."""
    parts: list[bytes] = []
    if flags is not None:
        parts.append(flags_field(flags))
    if name is not None:
        parts.append(name_field(name))
    services = list(services)
    if services:
        parts.append(services_field(services))
    if appearance is not None:
        parts.append(appearance_field(appearance))
    if manufacturer is not None:
        parts.append(manufacturer_field(*manufacturer))
    parts.extend(_bytes(f, "an AD structure") for f in fields)
    return check_length(b"".join(parts), limit)
