"""Bluetooth device addresses, API-neutral: types, byte order, text.

Byte order: the wire (our protocol, as on air) carries an address least significant byte
first; people and most APIs (MicroPython's ``bytes`` addresses, text ``AA:BB:CC:DD:EE:FF``)
write it most significant byte first. ``from_wire``/``to_wire`` turn one into the other.
"""
from __future__ import annotations

from typing import Any

from .. import protocol as P

#: Bytes in an address.
ADDR_LEN = 6

#: Address types as the protocol carries them (constants.addr_type).
PUBLIC = P.CONSTANTS["addr_type"]["PUBLIC"]
RANDOM = P.CONSTANTS["addr_type"]["RANDOM"]
#: Identity address types an HCI controller reports for a resolved peer (Core spec Vol 4 Part E
#: 7.7.65.1): public and static random identities behind a resolvable private address.
PUBLIC_ID = 2
RANDOM_ID = 3
#: Names of the types above, lowercase as `blebridge info` prints them.
TYPE_NAMES = {PUBLIC: "public", RANDOM: "random", PUBLIC_ID: "public-id", RANDOM_ID: "random-id"}

#: Kinds of random address, by the two most significant bits (Core spec Vol 6 Part B 1.3.2).
STATIC = "static"
RESOLVABLE = "resolvable"
NON_RESOLVABLE = "non-resolvable"
_RANDOM_KINDS = {0b11: STATIC, 0b01: RESOLVABLE, 0b00: NON_RESOLVABLE}


def _six(addr: Any, what: str) -> bytes:
    try:
        with memoryview(addr) as mv:
            raw = mv.tobytes()
    except TypeError:
        raise TypeError(f"{what} is a bytes-like object, not {type(addr).__name__}") from None
    if len(raw) != ADDR_LEN:
        raise ValueError(f"{what} has {ADDR_LEN} bytes, not {len(raw)}")
    return raw


def from_wire(addr: Any) -> bytes:
    """An address as the wire carries it (least significant byte first) -> most significant first."""
    return bytes(addr)[::-1]


def to_wire(addr: Any) -> bytes:
    """An address written most significant byte first -> as the wire carries it."""
    return bytes(addr)[::-1]


def format(addr: Any) -> str:   # noqa: A001 - the module's name says what is formatted
    """``AA:BB:CC:DD:EE:FF`` of an address given most significant byte first (6 bytes)."""
    return ":".join(f"{b:02X}" for b in _six(addr, "an address"))


def format_wire(addr: Any) -> str:
    """``AA:BB:CC:DD:EE:FF`` of an address as the wire carries it (least significant first)."""
    return format(from_wire(_six(addr, "an address")))


def parse(text: str) -> bytes:
    """The 6 bytes (most significant first) of ``AA:BB:CC:DD:EE:FF`` (``-`` or no separator
    also accepted, any case). ValueError names what is wrong."""
    if not isinstance(text, str):
        raise TypeError(f"an address's text is a str, not {type(text).__name__}")
    t = text.strip()
    parts = t.split(":") if ":" in t else t.split("-") if "-" in t else [t[i:i + 2] for i in range(0, len(t), 2)]
    if len(parts) != ADDR_LEN or any(len(p) != 2 for p in parts):
        raise ValueError(f"not an address: {text!r} (six hex bytes as AA:BB:CC:DD:EE:FF expected)")
    try:
        return bytes.fromhex("".join(parts))
    except ValueError:
        raise ValueError(f"not an address: {text!r} (hex digits expected)") from None


def parse_wire(text: str) -> bytes:
    """The 6 bytes of ``AA:BB:CC:DD:EE:FF`` as the wire carries them (least significant first)."""
    return to_wire(parse(text))


def random_kind(addr: Any) -> str:
    """STATIC, RESOLVABLE or NON_RESOLVABLE for a random address given most significant byte
    first; ValueError for the reserved pattern (top bits 10)."""
    top = _six(addr, "an address")[0] >> 6
    kind = _RANDOM_KINDS.get(top)
    if kind is None:
        raise ValueError(f"{format(addr)} is no random address: its top bits 10 are reserved")
    return kind


def ident(wire_addr: Any) -> str:
    """An address as a file-name-safe identifier: 12 uppercase hex digits, most significant
    first (``C0FFEE000001``), from the wire's byte order."""
    return from_wire(wire_addr).hex().upper()
