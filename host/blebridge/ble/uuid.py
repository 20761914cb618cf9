"""A Bluetooth UUID value, API-neutral: 16, 32 or 128 bits.

The value is kept as on air and on our protocol: 2, 4 or 16 bytes, little-endian, so
``bytes(uuid)`` / ``uuid.bytes_le`` go to the board unchanged.

- ``UUID(int)``: the smallest size that holds it (16, 32, then 128 bits);
  ``UUID.from_int(value, bits)`` picks the size.
- ``UUID(bytes-like)`` of 2, 4 or 16 bytes: those bytes, little-endian (``UUID.from_bytes_le``).
- ``UUID(str)``: ``UUID.from_str``: 4 or 8 hex digits (optional ``0x``) for 16/32 bits; 32 hex
  digits, bare or dashed 8-4-4-4-12, for 128 bits.
- ``str(uuid)``: canonical text: ``180d`` / ``0000180d`` (lowercase hex, most significant
  first) for 16/32 bits, ``6e400001-b5a3-f393-e0a9-e50e24dcca9e`` for 128 bits.
- Equality and hash: same size and same bytes. A 16-bit UUID is not equal to its 128-bit form;
  compare ``a.expanded() == b.expanded()`` for that.

An API layer subclasses it for its own constructor rules, repr and errors (MicroPython's
``bluetooth.UUID`` in blebridge/micropython/uuid.py).
"""
from __future__ import annotations

from typing import Any, Optional, Union

#: Sizes a UUID can have, bytes (16, 32 and 128 bits).
SIZES_BYTES = (2, 4, 16)
#: Sizes a UUID can have, bits.
SIZES_BITS = (16, 32, 128)
#: The Bluetooth Base UUID (Core spec Vol 3 Part B 2.5.1): a 16/32-bit value V is
#: V << 96 | BASE_INT as 128 bits.
BASE_INT = 0x00000000_0000_1000_8000_00805F9B34FB
#: Bits the short value is shifted by in the base UUID.
_BASE_SHIFT = 96

_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
#: Positions of the dashes in the canonical 36-character form.
_DASHES = (8, 13, 18, 23)


def _hex_or_error(digits: str, text: str) -> int:
    if not digits or any(c not in _HEXDIGITS for c in digits):
        raise ValueError(f"not a UUID: {text!r} (hex digits expected)")
    return int(digits, 16)


class UUID:
    """A Bluetooth UUID (16, 32 or 128 bit), immutable and hashable."""

    __slots__ = ("_data",)

    def __init__(self, value: Union[int, str, bytes, bytearray, memoryview, "UUID"], /) -> None:
        if isinstance(value, UUID):
            data = value._data
        elif isinstance(value, bool):
            raise TypeError("a UUID is made from an int, a str or 2, 4 or 16 bytes, not a bool")
        elif isinstance(value, int):
            data = UUID.from_int(value)._data
        elif isinstance(value, str):
            data = UUID.from_str(value)._data
        else:
            data = UUID.from_bytes_le(value)._data
        object.__setattr__(self, "_data", data)

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def _of(cls, data: bytes) -> "UUID":
        """An instance of cls holding ``data`` (2, 4 or 16 bytes, little-endian), unchecked."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "_data", bytes(data))
        return obj

    @classmethod
    def from_int(cls, value: int, bits: Optional[int] = None) -> "UUID":
        """The UUID of ``value``: ``bits`` 16, 32 or 128, or None for the smallest that holds it."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"a UUID's value is an int, not {type(value).__name__}")
        if bits is None:
            bits = next((b for b in SIZES_BITS if 0 <= value < 1 << b), 128)
        if bits not in SIZES_BITS:
            raise ValueError(f"a UUID has 16, 32 or 128 bits, not {bits}")
        if not 0 <= value < 1 << bits:
            raise ValueError(f"UUID value {value:#x} does not fit {bits} bits")
        return cls._of(value.to_bytes(bits // 8, "little"))

    @classmethod
    def from_bytes_le(cls, data: Any) -> "UUID":
        """The UUID whose bytes (little-endian, as on air) are ``data``: 2, 4 or 16 bytes."""
        if isinstance(data, (str, int, float, complex)) or data is None:
            raise TypeError(f"a UUID's bytes are a bytes-like object, not {type(data).__name__}")
        try:
            with memoryview(data) as mv:
                raw = mv.tobytes()
        except TypeError:
            raise TypeError(f"a UUID's bytes are a bytes-like object, not {type(data).__name__}") from None
        if len(raw) not in SIZES_BYTES:
            raise ValueError(f"a UUID has 2, 4 or 16 bytes, not {len(raw)}")
        return cls._of(raw)

    @classmethod
    def from_str(cls, text: str) -> "UUID":
        """The UUID written ``text``: 4 or 8 hex digits (``0x`` optional) give 16 or 32 bits;
        32 hex digits, bare or dashed as 8-4-4-4-12, give 128 bits."""
        if not isinstance(text, str):
            raise TypeError(f"a UUID's text is a str, not {type(text).__name__}")
        t = text.strip()
        short = t[2:] if t[:2] in ("0x", "0X") else t
        if len(short) in (4, 8):
            return cls._of(_hex_or_error(short, text).to_bytes(len(short) // 2, "little"))
        if len(t) == 36 and all(t[i] == "-" for i in _DASHES):
            digits = t.replace("-", "")
        elif len(t) == 32:
            digits = t
        else:
            raise ValueError(f"not a UUID: {text!r} (4, 8 or 32 hex digits, or 8-4-4-4-12 expected)")
        return cls._of(_hex_or_error(digits, text).to_bytes(16, "little"))

    # -- what it is -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bits: 16, 32 or 128."""
        return len(self._data) * 8

    @property
    def bytes_le(self) -> bytes:
        """The bytes as on air: little-endian, 2, 4 or 16 of them."""
        return self._data

    @property
    def value(self) -> int:
        """The UUID as a number (16, 32 or 128 bits)."""
        return int.from_bytes(self._data, "little")

    def expanded(self) -> "UUID":
        """The 128-bit form: a 16/32-bit UUID on the Bluetooth Base UUID, a 128-bit one itself."""
        if len(self._data) == 16:
            return self
        return type(self)._of(((self.value << _BASE_SHIFT) | BASE_INT).to_bytes(16, "little"))

    def shortened(self) -> "UUID":
        """The shortest form: a 128-bit UUID on the Base UUID as 16 (or 32) bits, else itself."""
        if len(self._data) != 16:
            return self
        short, rest = divmod(self.value - BASE_INT, 1 << _BASE_SHIFT)
        if rest or not 0 <= short < 1 << 32:
            return self
        return type(self).from_int(short, 16 if short < 1 << 16 else 32)

    def __bytes__(self) -> bytes:
        return self._data

    def __buffer__(self, flags: int) -> memoryview:   # Python 3.12+: memoryview(uuid)
        return memoryview(self._data)

    def __str__(self) -> str:
        h = self._data[::-1].hex()
        if len(self._data) < 16:
            return h
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def __repr__(self) -> str:
        if len(self._data) < 16:
            return f"{type(self).__name__}(0x{self._data[::-1].hex()})"
        return f"{type(self).__name__}('{self}')"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("UUID is immutable")

    def __hash__(self) -> int:
        return hash(self._data)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, UUID):
            return NotImplemented
        return self._data == other._data

    def __ne__(self, other: Any) -> bool:
        if not isinstance(other, UUID):
            return NotImplemented
        return self._data != other._data
