"""Board statuses as errnos (blebridge.ble.status)."""
import errno

from blebridge import protocol as P
from blebridge.ble import status
from blebridge.errors import BoardError

S = P.STATUS


def test_an_errno_status_is_its_own_errno():
    assert status.to_errno(S["EBUSY"]) == errno.EBUSY


def test_not_active_is_enodev():
    assert status.to_errno(S["NOT_ACTIVE"]) == errno.ENODEV


def test_unknown_handle_is_enotconn():
    assert status.to_errno(S["UNKNOWN_HANDLE"]) == errno.ENOTCONN


def test_other_protocol_statuses_are_einval():
    assert status.to_errno(S["VALUE_TOO_LARGE"]) == errno.EINVAL


def test_ok_is_no_errno_status():
    assert not status.is_errno(S["OK"])


def test_protocol_statuses_are_no_errno_statuses():
    assert not status.is_errno(S["MALFORMED"])


def test_is_errno_agrees_with_board_error_errno():
    assert all(status.is_errno(s) == (BoardError(s, "m").errno is not None) for s in S.values() if s)


def test_nothing_to_stop_is_ealready_and_enoent():
    assert status.NOTHING_TO_STOP == {S["EALREADY"], S["ENOENT"]}


def test_not_connected_is_enotconn_and_unknown_handle():
    assert status.NOT_CONNECTED == {S["ENOTCONN"], S["UNKNOWN_HANDLE"]}
