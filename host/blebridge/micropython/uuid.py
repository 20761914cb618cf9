"""``bluetooth.UUID`` as MicroPython has it (extmod/modbluetooth.c).

The value is kept as MicroPython keeps it: 2, 4 or 16 bytes, little-endian as on air, so
``bytes(uuid)`` is what goes over the radio and over our protocol unchanged.

Behaviour copied from the board:
- ``UUID(int)``: a 16-bit UUID; more than 0xFFFF is ``ValueError("invalid UUID")``.
- ``UUID(buffer)`` of 2, 4 or 16 bytes (bytes, bytearray, memoryview, another UUID, and a
  str, which has the buffer protocol there: its UTF-8 bytes): taken as those bytes,
  little-endian. So ``UUID("AB12") == UUID(0x32314241)`` (4 characters: a 32-bit UUID of their
  codes) and a 16-character str is a 128-bit UUID of its codes, as on a board.
- ``UUID(buffer)`` of any other length (a str or bytes of text): the text of a 128-bit UUID,
  hex digits with any ``-``, exactly 32 digits. Bad characters, too many or too few digits are
  ``ValueError`` with MicroPython's messages ("invalid char in UUID", "UUID too long", "UUID
  too short"); there are no 16- or 32-bit text forms (``UUID("0000180d")`` is too short).
- ``repr``/``str``: ``UUID(0x2a00)`` or ``UUID('6e400001-b5a3-f393-e0a9-e50e24dcca9e')``.
- Equality, hash and ordering: UUIDs of the same size compare their little-endian bytes;
  UUIDs of different sizes order by size (and are never equal). A UUID never equals a non-UUID.

The value type (bytes, size, equality, hash, immutability, 128-bit expansion) is the
API-neutral blebridge.ble.uuid.UUID; this subclass keeps MicroPython's constructor rules, repr
and ordering. A neutral UUID with the same bytes compares equal.

This is extmod/modbluetooth.c's ``bluetooth_uuid_make_new``: the length of the buffer (a
str's UTF-8 length) decides, before any parsing. The API-neutral blebridge.ble.uuid.UUID.from_str
has 16- and 32-bit text forms; this constructor does not use it.
"""
from __future__ import annotations

from typing import Any, Union

from ..ble import uuid as _ble_uuid

#: Sizes in bytes a UUID can have (MP_BLUETOOTH_UUID_TYPE_16/_32/_128).
UUID_SIZES = _ble_uuid.SIZES_BYTES

_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")


def buffer_bytes(value: Any) -> bytes:
    """The bytes of anything MicroPython accepts as a read buffer (str included, as UTF-8).

    Raises TypeError like ``mp_get_buffer_raise`` for objects without the buffer protocol.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, _ble_uuid.UUID):
        return value._data
    if isinstance(value, (int, float, complex, bool)) or value is None:
        raise TypeError("object with buffer protocol required")
    try:
        with memoryview(value) as mv:
            return mv.tobytes()
    except TypeError:
        raise TypeError("object with buffer protocol required") from None


def _parse_text(raw: bytes) -> bytes:
    """A 128-bit UUID from its text: hex digits and any number of ``-``, read byte by byte in
    modbluetooth.c's order (so the first fault found is the one reported, and a non-ASCII
    byte is an invalid char)."""
    digits = bytearray()
    for c in raw:
        if c == 0x2D:    # '-'
            continue
        if c not in _HEXDIGITS:
            raise ValueError("invalid char in UUID")
        digits.append(c)
        if len(digits) > 32:
            raise ValueError("UUID too long")
    if len(digits) < 32:
        raise ValueError("UUID too short")
    return bytes.fromhex(digits.decode("ascii"))[::-1]


class UUID(_ble_uuid.UUID):
    """A Bluetooth UUID (16, 32 or 128 bit): blebridge.ble.uuid.UUID with MicroPython's
    constructor rules, repr and ordering."""

    __slots__ = ()

    def __init__(self, value: Union[int, str, bytes, bytearray, memoryview, "UUID"], /) -> None:
        if isinstance(value, int):   # bool included, as mp_obj_is_int accepts it
            if value < 0 or value > 0xFFFF:
                raise ValueError("invalid UUID")
            data = int(value).to_bytes(2, "little")
        else:
            raw = buffer_bytes(value)    # a str gives its UTF-8 bytes, as on a board
            # The length decides first (MicroPython): 2, 4 or 16 bytes are the UUID's bytes;
            # any other buffer is the text of a 128-bit UUID.
            data = raw if len(raw) in UUID_SIZES else _parse_text(raw)
        object.__setattr__(self, "_data", data)

    def __repr__(self) -> str:
        n = len(self._data)
        if n <= 4:
            return "UUID(0x" + self._data[::-1].hex() + ")"
        h = self._data[::-1].hex()
        return f"UUID('{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}')"

    __str__ = __repr__

    def _cmp(self, other: Any) -> Any:
        if not isinstance(other, UUID):
            return NotImplemented
        if len(self._data) != len(other._data):
            return (len(self._data), b""), (len(other._data), b"")
        return self._data, other._data

    def __lt__(self, other: Any) -> bool:
        pair = self._cmp(other)
        return pair if pair is NotImplemented else pair[0] < pair[1]

    def __le__(self, other: Any) -> bool:
        pair = self._cmp(other)
        return pair if pair is NotImplemented else pair[0] <= pair[1]

    def __gt__(self, other: Any) -> bool:
        pair = self._cmp(other)
        return pair if pair is NotImplemented else pair[0] > pair[1]

    def __ge__(self, other: Any) -> bool:
        pair = self._cmp(other)
        return pair if pair is NotImplemented else pair[0] >= pair[1]
