"""Board statuses as errno values, API-neutral.

A board answers a call with a status (protocol/schema.toml, ``[[status]]``): below
FIRST_PROTOCOL_STATUS a status IS an errno (Linux numbering, which MicroPython shares); from it up
it is a protocol status found by the firmware core. Every API that reports OSError-style errors
needs one errno for each; this is the mapping common to them. A layer's own per-method
exceptions (MicroPython's NimBLE binding says EINVAL for an unknown attribute handle, for
example) stay in that layer, looked up before this.
"""
from __future__ import annotations

import errno as _errno

from .. import protocol as P
from ..errors import FIRST_PROTOCOL_STATUS

S = P.STATUS

#: Errno of each protocol status that has one fitting meaning.
PROTOCOL_ERRNO = {
    S["NOT_ACTIVE"]: _errno.ENODEV,        # the radio is off: no BLE device to use
    S["UNKNOWN_HANDLE"]: _errno.ENOTCONN,  # most calls name a connection by its handle
}
#: Errno of any other protocol status (MALFORMED, BAD_ARG_TYPE, VALUE_TOO_LARGE, ...): the
#: stack refused the value.
OTHER_PROTOCOL_ERRNO = _errno.EINVAL

#: Statuses of a stop/cancel call that found nothing to stop (not a failure for the caller).
NOTHING_TO_STOP = frozenset({S["EALREADY"], S["ENOENT"]})
#: Statuses of a call naming a connection that is not (or no longer) open.
NOT_CONNECTED = frozenset({S["ENOTCONN"], S["UNKNOWN_HANDLE"]})


def is_errno(status: int) -> bool:
    """True if ``status`` is an errno value (not OK, not a protocol status)."""
    return 0 < status < FIRST_PROTOCOL_STATUS


def to_errno(status: int) -> int:
    """The errno an API reports for a board ``status`` (non-zero)."""
    if is_errno(status):
        return status
    return PROTOCOL_ERRNO.get(status, OTHER_PROTOCOL_ERRNO)

