"""Exceptions of the blebridge host package.

One root, :class:`BlebridgeError`; every subclass also inherits the builtin that fits, so code
written against the boards' own APIs (``except OSError``, ``except TimeoutError``) keeps working.
Messages are one line and name the operation and, for board statuses, the status name.
"""
from __future__ import annotations

from typing import Optional

from .protocol import STATUS, STATUS_DOCS, STATUS_NAMES

#: Statuses below this are errno values (MicroPython and Linux numbering); from it up they are
#: protocol errors found by the firmware core.
FIRST_PROTOCOL_STATUS = 256


class BlebridgeError(Exception):
    """Root of every blebridge exception."""


class BoardError(BlebridgeError, OSError):
    """The board answered a call with a non-zero status.

    ``.status`` is the status number, ``.status_name`` its schema name (``"EINVAL"``,
    ``"UNKNOWN_HANDLE"``), ``.method`` the method called. ``.errno`` is the status when it is
    an errno (< 256), else None, so ``OSError.errno`` checks work as on a board.
    """

    def __init__(self, status: int, method: str, detail: str = "") -> None:
        self.status = status
        self.status_name = status_name(status)
        self.method = method
        doc = detail or STATUS_DOCS.get(status, "unknown status")
        msg = f"{method}: {self.status_name} ({status}): {doc}"
        errno_ = status if 0 < status < FIRST_PROTOCOL_STATUS else None
        # OSError(errno, strerror) sets .errno/.strerror; with errno None it would set neither.
        super().__init__(errno_, msg)
        self.errno = errno_

    def __str__(self) -> str:
        return self.strerror or ""

    def __reduce__(self):  # keep pickling (concurrent.futures across processes) working
        return (type(self), (self.status, self.method))


class CallTimeout(BlebridgeError, TimeoutError):
    """The board did not answer a call within its timeout."""

    def __init__(self, method: str, timeout: float) -> None:
        self.method = method
        self.timeout = timeout
        super().__init__(f"{method}: no answer from the board within {timeout:g} s")

    def __reduce__(self):
        return (type(self), (self.method, self.timeout))


class BoardLost(BlebridgeError, ConnectionError):
    """The link to the board is gone (unplugged, port closed, process ended) mid-call."""


class BoardReset(BoardLost):
    """The board restarted (a BOOT event with a new boot id): calls in flight were lost."""


class ProtocolError(BlebridgeError, ValueError):
    """The board sent something that is not a valid blebridge message."""


class VersionMismatch(BlebridgeError, RuntimeError):
    """Host and firmware protocol major versions differ; the message names the fix."""

    def __init__(self, host: tuple[int, int], board: tuple[int, int], fix: str, port: str = "") -> None:
        self.host_version = host
        self.board_version = board
        self.fix = fix
        self.port = port
        where = f" on {port}" if port else ""
        newer = "host" if host[0] > board[0] else "firmware"
        super().__init__(
            f"protocol version mismatch{where}: host speaks {host[0]}.{host[1]}, firmware speaks "
            f"{board[0]}.{board[1]} (the {newer} is newer); fix: run `{fix}`"
        )

    def __reduce__(self):
        return (type(self), (self.host_version, self.board_version, self.fix, self.port))


class PortOpenError(BlebridgeError, OSError):
    """A port could not be opened. ``.hint`` says what to do about it."""

    #: Hints for the usual causes, shared with the CLI.
    HINT_BUSY = "another program holds it; close it (a serial monitor, another blebridge) and retry"
    HINT_PERMISSION = "add yourself to the dialout group: sudo usermod -aG dialout $USER, then log in again"
    HINT_NO_SUCH_PORT = "run `blebridge list` to see the ports and boards present"

    def __init__(self, port: str, reason: str, hint: str = "", errno_: Optional[int] = None) -> None:
        self.port = port
        self.reason = reason
        self.hint = hint
        super().__init__(errno_, f"cannot open {port}: {reason}")
        self.errno = errno_

    def __str__(self) -> str:
        return self.strerror or ""

    def __reduce__(self):
        return (type(self), (self.port, self.reason, self.hint, self.errno))


class SecretStoreError(BlebridgeError, OSError):
    """The host's file of bonding secrets cannot be used: unreadable, corrupt, truncated, or not
    the layout blebridge writes. ``.filename`` is the file, ``.reason`` what is wrong with it.
    The file is never rewritten while it is in this state; the message says how to go on."""

    def __init__(self, path: str, reason: str, errno_: Optional[int] = None) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(
            errno_,
            f"bonding secrets file {self.path}: {reason}; it was left as it is: repair it, or move "
            f"it away to start with no bonds for this board (they are then forgotten)",
        )
        self.errno = errno_
        self.filename = self.path

    def __str__(self) -> str:
        return self.strerror or ""

    def __reduce__(self):
        return (type(self), (self.path, self.reason, self.errno))


def status_name(status: int) -> str:
    """Schema name of a status number (``STATUS_<n>`` for unknown numbers)."""
    return STATUS_NAMES.get(status, f"STATUS_{status}")


__all__ = [
    "BlebridgeError", "BoardError", "CallTimeout", "BoardLost", "BoardReset", "ProtocolError",
    "VersionMismatch", "PortOpenError", "SecretStoreError", "status_name", "STATUS",
]
