"""``_bleio.Attribute`` security modes, and what each asks of the board (protocol flags).

The board enforces them (protocol constants.flag): ``ENCRYPT_NO_MITM`` an encrypted link,
``ENCRYPT_WITH_MITM`` an authenticated one, ``LESC_ENCRYPT_WITH_MITM`` an authenticated
LE Secure Connections one; ``NO_ACCESS`` removes the access. Signed writes are not supported
by the boards: ``SIGNED_NO_MITM`` / ``SIGNED_WITH_MITM`` ask for an encrypted / authenticated
link instead (stricter, never weaker; docs/circuitpython.md).
"""
from __future__ import annotations

from ... import protocol as P
from .errors import invalid

_F = P.CONSTANTS["flag"]

NO_ACCESS = 0x00
OPEN = 0x11
ENCRYPT_NO_MITM = 0x21
ENCRYPT_WITH_MITM = 0x31
LESC_ENCRYPT_WITH_MITM = 0x41
SIGNED_NO_MITM = 0x12
SIGNED_WITH_MITM = 0x22

MODES = (NO_ACCESS, OPEN, ENCRYPT_NO_MITM, ENCRYPT_WITH_MITM, LESC_ENCRYPT_WITH_MITM,
         SIGNED_NO_MITM, SIGNED_WITH_MITM)

#: Security levels a mode asks for: (encrypted, authenticated, LE Secure Connections).
_LEVELS = {
    OPEN: (False, False, False),
    ENCRYPT_NO_MITM: (True, False, False),
    ENCRYPT_WITH_MITM: (True, True, False),
    LESC_ENCRYPT_WITH_MITM: (True, True, True),
    SIGNED_NO_MITM: (True, False, False),
    SIGNED_WITH_MITM: (True, True, False),
}


class Attribute:
    """Security modes of characteristics and descriptors. You cannot create an instance."""

    NO_ACCESS = NO_ACCESS
    OPEN = OPEN
    ENCRYPT_NO_MITM = ENCRYPT_NO_MITM
    ENCRYPT_WITH_MITM = ENCRYPT_WITH_MITM
    LESC_ENCRYPT_WITH_MITM = LESC_ENCRYPT_WITH_MITM
    SIGNED_NO_MITM = SIGNED_NO_MITM
    SIGNED_WITH_MITM = SIGNED_WITH_MITM

    def __init__(self) -> None:
        raise TypeError("cannot create '_bleio.Attribute' instances")


def check_mode(mode: object) -> int:
    """A valid security mode, or CircuitPython's ValueError."""
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"security_mode must be of type int, not {type(mode).__name__}")
    if mode not in MODES:
        raise invalid("security_mode")
    return mode


def flags(read_perm: int, write_perm: int) -> int:
    """The protocol permission flags of a read and a write security mode."""
    out = 0
    if read_perm in _LEVELS:
        enc, auth, lesc = _LEVELS[read_perm]
        out |= (_F["READ_ENCRYPTED"] if enc else 0) | (_F["READ_AUTHENTICATED"] if auth else 0) \
            | (_F["READ_LESC"] if lesc else 0)
    if write_perm in _LEVELS:
        enc, auth, lesc = _LEVELS[write_perm]
        out |= (_F["WRITE_ENCRYPTED"] if enc else 0) | (_F["WRITE_AUTHENTICATED"] if auth else 0) \
            | (_F["WRITE_LESC"] if lesc else 0)
    return out
