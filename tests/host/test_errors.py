"""The exception hierarchy: one root, the fitting builtin, one-line messages naming the fix."""
from __future__ import annotations

import errno
import pickle

import pytest

from blebridge.errors import (BlebridgeError, BoardError, BoardLost, BoardReset, CallTimeout, PortOpenError,
                              ProtocolError, VersionMismatch)

CASES = [
    (BoardError(22, "gatts_write"), OSError),
    (CallTimeout("gattc_read", 10), TimeoutError),
    (BoardLost("x"), ConnectionError),
    (BoardReset("x"), BoardLost),
    (ProtocolError("x"), ValueError),
    (VersionMismatch((1, 0), (2, 0), "blebridge flash"), RuntimeError),
    (PortOpenError("/dev/ttyACM0", "permission denied", PortOpenError.HINT_PERMISSION), OSError),
]


@pytest.mark.parametrize("exc,builtin", CASES, ids=lambda x: type(x).__name__ if isinstance(x, Exception) else x.__name__)
def test_every_error_is_a_blebridge_error_and_its_builtin(exc, builtin):
    assert isinstance(exc, BlebridgeError) and isinstance(exc, builtin)


@pytest.mark.parametrize("exc,builtin", CASES, ids=lambda x: type(x).__name__ if isinstance(x, Exception) else x.__name__)
def test_every_error_message_is_one_line(exc, builtin):
    assert str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("exc,builtin", CASES, ids=lambda x: type(x).__name__ if isinstance(x, Exception) else x.__name__)
def test_errors_survive_pickling(exc, builtin):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)


def test_board_error_errno_is_the_status_for_errno_statuses():
    e = BoardError(errno.ENOTCONN, "gap_disconnect")
    assert (e.errno, e.status, e.status_name, e.method) == (errno.ENOTCONN, 107, "ENOTCONN", "gap_disconnect")


def test_board_error_message_names_method_and_status():
    assert str(BoardError(261, "gatts_read")).startswith("gatts_read: UNKNOWN_HANDLE (261)")


def test_board_error_for_an_unknown_status_still_has_a_name():
    assert BoardError(999, "echo").status_name == "STATUS_999"


def test_call_timeout_names_method_and_seconds():
    assert str(CallTimeout("gattc_read", 2.5)) == "gattc_read: no answer from the board within 2.5 s"


def test_version_mismatch_names_both_versions_and_the_fix():
    msg = str(VersionMismatch((1, 2), (0, 9), "blebridge flash --port /dev/ttyACM0", "/dev/ttyACM0"))
    assert "1.2" in msg and "0.9" in msg and "`blebridge flash --port /dev/ttyACM0`" in msg


def test_port_open_error_keeps_port_reason_and_hint():
    e = PortOpenError("/dev/ttyUSB0", "the port is busy", PortOpenError.HINT_BUSY, errno.EBUSY)
    assert (e.port, e.reason, e.errno) == ("/dev/ttyUSB0", "the port is busy", errno.EBUSY)
    assert "another program holds it" in e.hint
    assert str(e) == "cannot open /dev/ttyUSB0: the port is busy"
