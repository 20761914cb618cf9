"""``_bleio.UUID``: CircuitPython's constructor rules and shape over blebridge.ble.uuid.UUID.

- ``UUID(int)``: a 16-bit (Bluetooth SIG) UUID, 0..0xFFFF;
- ``UUID(str)``: 128 bits, exactly ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``;
- ``UUID(buffer)``: 128 bits, 16 bytes little-endian;
- ``UUID(UUID)``: a copy.
A 128-bit UUID stays 128-bit even on the Bluetooth Base UUID (CircuitPython never shortens),
and ``uuid16`` is its bytes 12..13, as CircuitPython reports it.
"""
from __future__ import annotations

from typing import Any

from ...ble.uuid import UUID as _BleUUID
from .errors import check_int

#: Characters in CircuitPython's one accepted text form, and where its dashes are.
_TEXT_LEN = 36
_DASHES = (8, 13, 18, 23)
_HEX = frozenset("0123456789abcdefABCDEF")


class UUID(_BleUUID):
    """A 16-bit or 128-bit UUID."""

    __slots__ = ()

    def __init__(self, value: Any, /) -> None:   # noqa: D107
        if isinstance(value, _BleUUID):
            data = bytes(value)
            if len(data) == 4:   # CircuitPython has no 32-bit UUIDs: the 128-bit form
                data = value.expanded().bytes_le
        elif isinstance(value, int):
            v = check_int(value, "value")
            if not 0 <= v <= 0xFFFF:
                raise ValueError("value must be 0-65535")
            data = v.to_bytes(2, "little")
        elif isinstance(value, str):
            ok = (len(value) == _TEXT_LEN and all(value[i] == "-" for i in _DASHES)
                  and sum(c in _HEX for c in value) == 32)
            if not ok:
                raise ValueError("UUID string not 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'")
            data = bytes.fromhex(value.replace("-", ""))[::-1]
        else:
            try:
                with memoryview(value) as mv:
                    data = mv.tobytes()
            except TypeError:
                raise ValueError("UUID value is not str, int or byte buffer") from None
            if len(data) != 16:
                raise ValueError(f"value length must be 16, not {len(data)}")
        object.__setattr__(self, "_data", data)

    @property
    def uuid16(self) -> int:
        """The 16-bit part of the UUID (bytes 12..13 of a 128-bit one)."""
        if len(self._data) == 2:
            return int.from_bytes(self._data, "little")
        return int.from_bytes(self._data[12:14], "little")

    @property
    def uuid128(self) -> bytes:
        """The 128-bit value, little-endian; AttributeError for a 16-bit UUID."""
        if len(self._data) != 16:
            raise AttributeError("not a 128-bit UUID")
        return self._data

    @property
    def size(self) -> int:
        """128 or 16 (bits)."""
        return len(self._data) * 8

    def pack_into(self, buffer: Any, offset: int = 0) -> None:
        """Pack the UUID (2 or 16 bytes, little-endian) into ``buffer`` at ``offset``."""
        try:
            mv = memoryview(buffer)
        except TypeError:
            raise TypeError(f"object with buffer protocol required, not {type(buffer).__name__}") from None
        if mv.readonly:
            raise TypeError("buffer must be writable")
        off = check_int(offset, "offset")
        if not 0 <= off <= len(mv):
            raise ValueError(f"offset must be 0-{len(mv)}")
        n = len(self._data)
        if len(mv) - off < n:
            raise ValueError(f"buffer length must be >= {n}")
        mv.cast("B")[off:off + n] = self._data

    def __repr__(self) -> str:
        if len(self._data) == 2:
            return f"UUID(0x{self.uuid16:04x})"
        h = self._data[::-1].hex()
        return f"UUID('{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}')"

    __str__ = __repr__


def of_wire(data: bytes) -> UUID:
    """The ``_bleio.UUID`` of a UUID as the board reports it (2, 4 or 16 bytes)."""
    return UUID(_BleUUID.from_bytes_le(data))
