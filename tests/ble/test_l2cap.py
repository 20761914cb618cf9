"""blebridge.ble.l2cap: channels from the board's events."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_rpc_board import FakeRpcBoard  # noqa: E402

from blebridge.ble import session as ble_session  # noqa: E402
from blebridge.ble.l2cap import ChannelRefused, L2cap  # noqa: E402

PEER = bytes(6)


@pytest.fixture
def board():
    return FakeRpcBoard()


@pytest.fixture
def l2cap(board):
    session = ble_session.session_for(board)
    manager = L2cap(session)
    yield manager
    manager.close()
    session.close()


def test_connect_resolves_with_the_channel_the_board_opened(board, l2cap):
    fut = l2cap.connect(1, 0x81, 256)
    board.event("L2CAP_CONNECT", 1, 0x40, 0x81, 256, 128)
    chan = fut.result(0)
    assert (chan.cid, chan.our_mtu, chan.peer_mtu, chan.open) == (0x40, 256, 128, True)


def test_connect_refused_after_the_retry_time_raises_channel_refused(board, l2cap, monkeypatch):
    from blebridge.ble import l2cap as mod
    monkeypatch.setattr(mod, "CONNECT_RETRY_S", 0.0)
    fut = l2cap.connect(1, 0x81, 256)
    board.event("L2CAP_DISCONNECT", 1, 0, 0x81, 2)
    with pytest.raises(ChannelRefused) as info:
        fut.result(0)
    assert info.value.status == 2


def test_a_channel_the_peer_opened_is_handed_out_once(board, l2cap):
    board.event("L2CAP_CONNECT", 1, 0x41, 0x81, 256, 256)
    first = l2cap.accepted(1)
    assert first is not None and first.cid == 0x41 and l2cap.accepted(1) is None


def test_received_bytes_are_moved_into_the_buffer_in_order(board, l2cap):
    board.event("L2CAP_CONNECT", 1, 0x41, 0x81, 256, 256)
    chan = l2cap.accepted(1)
    board.event("L2CAP_RECV", 1, 0x41, b"hello ")
    board.event("L2CAP_RECV", 1, 0x41, b"world")
    buf = bytearray(8)
    assert l2cap.recv_into(chan, buf) == 8 and bytes(buf) == b"hello wo"
    assert l2cap.recv_into(chan, buf) == 3 and bytes(buf[:3]) == b"rld"


def test_a_stalled_send_clears_on_send_ready(board, l2cap):
    board.event("L2CAP_CONNECT", 1, 0x41, 0x81, 256, 256)
    chan = l2cap.accepted(1)
    board.results["l2cap_send"] = False
    assert l2cap.send(chan, b"x") is False and chan.stalled
    board.event("L2CAP_SEND_READY", 1, 0x41, 0)
    assert not chan.stalled


def test_the_connection_ending_closes_its_channels(board, l2cap):
    board.event("L2CAP_CONNECT", 1, 0x41, 0x81, 256, 256)
    chan = l2cap.accepted(1)
    board.event("CENTRAL_DISCONNECT", 1, 0, PEER, 0x13)
    assert not chan.open


def test_send_ready_handled_before_the_stalled_answer_returns_leaves_the_channel_ready(board, l2cap):
    # A server that batches the board's output (ser2net's chardelay) hands the host the call's
    # answer and the SEND_READY after it in one read: the event is handled first.
    board.event("L2CAP_CONNECT", 1, 0x41, 0x81, 256, 256)
    chan = l2cap.accepted(1)
    board.results["l2cap_send"] = False
    call = board.call

    def call_then_ready(method, *args, **kw):
        result = call(method, *args, **kw)
        if method == "l2cap_send":
            board.event("L2CAP_SEND_READY", 1, 0x41, 0)
        return result
    board.call = call_then_ready
    assert l2cap.send(chan, b"x") is False and not chan.stalled
