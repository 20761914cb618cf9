"""``_bleio.Address``: bytes least significant first (as on air and on our wire), and
CircuitPython's four address types; the wire has two (public, random), so a random address's
CircuitPython type comes from its top two bits (Core spec Vol 6 Part B 1.3.2)."""
from __future__ import annotations

from typing import Any

from ...ble import address as _address
from .errors import buffer, check_int

PUBLIC = 0
RANDOM_STATIC = 1
RANDOM_PRIVATE_RESOLVABLE = 2
RANDOM_PRIVATE_NON_RESOLVABLE = 3

_KIND_TYPE = {_address.STATIC: RANDOM_STATIC, _address.RESOLVABLE: RANDOM_PRIVATE_RESOLVABLE,
              _address.NON_RESOLVABLE: RANDOM_PRIVATE_NON_RESOLVABLE}


class Address:
    """The address of a BLE device: ``Address(address_bytes, address_type)``."""

    PUBLIC = PUBLIC
    RANDOM_STATIC = RANDOM_STATIC
    RANDOM_PRIVATE_RESOLVABLE = RANDOM_PRIVATE_RESOLVABLE
    RANDOM_PRIVATE_NON_RESOLVABLE = RANDOM_PRIVATE_NON_RESOLVABLE

    __slots__ = ("_bytes", "_type")

    def __init__(self, address: Any, address_type: int = PUBLIC) -> None:
        raw = buffer(address, "address")
        if len(raw) != _address.ADDR_LEN:
            raise ValueError(f"address length must be {_address.ADDR_LEN}, not {len(raw)}")
        t = check_int(address_type, "address_type")
        if not PUBLIC <= t <= RANDOM_PRIVATE_NON_RESOLVABLE:
            raise ValueError(f"address_type must be {PUBLIC}-{RANDOM_PRIVATE_NON_RESOLVABLE}")
        self._bytes = raw
        self._type = t

    @classmethod
    def of_wire(cls, addr_type: int, addr: bytes) -> "Address":
        """The Address of a board event's (addr_type, addr): identity types (2, 3) as their
        public/random identity; a random address typed by its top bits."""
        t = int(addr_type)
        if t in (_address.PUBLIC_ID, _address.RANDOM_ID):
            t -= 2
        if t == _address.PUBLIC:
            return cls(bytes(addr), PUBLIC)
        try:
            kind = _address.random_kind(_address.from_wire(addr))
        except ValueError:
            kind = _address.STATIC   # reserved pattern: say static, the one that does not change
        return cls(bytes(addr), _KIND_TYPE[kind])

    @property
    def address_bytes(self) -> bytes:
        """The address, least significant byte first."""
        return self._bytes

    @property
    def type(self) -> int:
        return self._type

    @property
    def wire_type(self) -> int:
        """The protocol's address type (constants.addr_type): public or random."""
        return _address.PUBLIC if self._type == PUBLIC else _address.RANDOM

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._bytes == other._bytes and self._type == other._type

    def __hash__(self) -> int:
        return hash((self._bytes, self._type))

    def __repr__(self) -> str:
        return "<Address " + ":".join(f"{b:02x}" for b in self._bytes[::-1]) + ">"
