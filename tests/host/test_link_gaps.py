"""Event frames lost on the link: sequence gaps are counted, warned about and handed to gap
listeners in order; late and duplicate responses are ignored and counted."""
from __future__ import annotations

import logging
import threading

import pytest

from blebridge import open_board
from blebridge import protocol as P
from blebridge.linkseq import EVENT_SEQ_MOD, EventSeq, LinkGap
from event_log import collect

WAIT_S = 10.0     # generous: the machine running the tests may be loaded


def _record_gaps(board) -> tuple[list, list[LinkGap], threading.Condition]:
    """Events and gaps in the order the dispatcher delivered them."""
    order: list = []
    gaps: list[LinkGap] = []
    cond = threading.Condition()

    def on_event(ev):
        with cond:
            order.append(ev.name)
            cond.notify_all()

    def on_gap(gap):
        with cond:
            gaps.append(gap)
            order.append(("gap", gap.frames_lost))
            cond.notify_all()

    board.add_event_listener(on_event)
    board.add_gap_listener(on_gap)
    return order, gaps, cond


def test_no_gap_when_every_event_frame_arrives(board, fake):
    seen, cond = collect(board)
    for i in range(5):
        fake.send_event(P.EV_SCAN_DONE)
    with cond:
        assert cond.wait_for(lambda: len(seen) == 5, WAIT_S)
    c = board.host_counters()
    assert (c["link_gaps"], c["link_frames_lost"]) == (0, 0)
    assert c["event_frames"] == 5


def test_gap_is_counted_with_the_number_of_frames_lost(board, fake):
    seen, cond = collect(board)
    fake.send_event(P.EV_SCAN_DONE)
    fake.lose_event_frames(3)
    fake.send_event(P.EV_SCAN_DONE)
    with cond:
        assert cond.wait_for(lambda: len(seen) == 2, WAIT_S)
    c = board.host_counters()
    assert (c["link_gaps"], c["link_frames_lost"]) == (1, 3)


def test_gap_reaches_gap_listeners_between_the_events_around_it(board, fake):
    order, gaps, cond = _record_gaps(board)
    fake.send_batch([[P.EV_SCAN_DONE], [P.EV_ADVERTISE_DONE, 0]])
    fake.lose_event_frames(2)
    fake.send_event(P.EV_MTU_EXCHANGED, 1, 100)
    with cond:
        assert cond.wait_for(lambda: len(order) == 4, WAIT_S)
    assert order == ["SCAN_DONE", "ADVERTISE_DONE", ("gap", 2), "MTU_EXCHANGED"]
    assert gaps[0].gaps == 1 and gaps[0].total_frames_lost == 2


def test_each_gap_warns_once_when_no_gap_listener_is_registered(board, fake, caplog):
    seen, cond = collect(board)
    with caplog.at_level(logging.WARNING, logger="blebridge.rpc"):
        fake.send_event(P.EV_SCAN_DONE)
        fake.lose_event_frames(1)
        fake.send_event(P.EV_SCAN_DONE)
        fake.lose_event_frames(4)
        fake.send_event(P.EV_SCAN_DONE)
        fake.send_event(P.EV_SCAN_DONE)
        with cond:
            assert cond.wait_for(lambda: len(seen) == 4, WAIT_S)
        board.call("echo", b"sync")   # the dispatcher logged both gaps before the last event
    warnings = [r.getMessage() for r in caplog.records if "lost on the link" in r.getMessage()]
    assert len(warnings) == 2
    assert "1 event frame lost" in warnings[0] and "4 event frames lost" in warnings[1]


def test_gap_across_sequence_wrap_around_counts_the_frames_lost(fake):
    fake.event_seq = EVENT_SEQ_MOD - 2       # the handshake tells the host: next is MOD-2
    with open_board(fake.path, timeout=5) as board:
        _wrap_gap(board, fake)


def _wrap_gap(board, fake):
    seen, cond = collect(board)
    fake.send_event(P.EV_SCAN_DONE)          # MOD-2
    fake.lose_event_frames(3)                # MOD-1, 0 and 1 lost
    fake.send_event(P.EV_SCAN_DONE)          # 2
    with cond:
        assert cond.wait_for(lambda: len(seen) == 2, WAIT_S)
    c = board.host_counters()
    assert (c["link_gaps"], c["link_frames_lost"]) == (1, 3)


def test_frames_lost_before_the_handshake_response_are_a_gap(board, fake):
    seen, cond = collect(board)
    fake.send_event(P.EV_SCAN_DONE)
    with cond:
        assert cond.wait_for(lambda: len(seen) == 1, WAIT_S)
    fake.lose_event_frames(2)                # lost, then the handshake tells the next number
    board.handshake()
    assert board.host_counters()["link_frames_lost"] == 2


def test_reboot_restarts_the_count_without_a_gap(board, fake):
    seen, cond = collect(board)
    fake.send_event(P.EV_SCAN_DONE)
    fake.send_event(P.EV_SCAN_DONE)
    fake.reboot(boot_id=77)                  # BOOT in frame 0 again
    fake.send_event(P.EV_SCAN_DONE)
    with cond:
        assert cond.wait_for(lambda: len(seen) == 4, WAIT_S)
    assert board.host_counters()["link_gaps"] == 0


def test_reboot_whose_boot_frame_was_lost_is_a_reset(board, fake):
    from blebridge import BoardReset
    lost: list[BaseException] = []
    told = threading.Event()
    board.add_lost_listener(lambda exc: (lost.append(exc), told.set()))
    for _ in range(5):
        fake.send_event(P.EV_SCAN_DONE)
    fake.boot_id, fake.event_seq = 78, 0      # restarted; its BOOT frame (0) lost on the link
    fake.lose_event_frames(1)
    fake.send_event(P.EV_SCAN_DONE)           # frame 1: the count ran backwards
    assert told.wait(WAIT_S)
    assert isinstance(lost[0], BoardReset) and "BOOT event was lost" in str(lost[0])
    assert board.host_counters()["resets"] == 1
    assert _wait(lambda: board.info.boot_id == 78)
    assert board.call("echo", b"after") == b"after"


def test_backwards_gap_with_the_same_boot_id_is_only_a_gap(board, fake):
    lost: list[BaseException] = []
    board.add_lost_listener(lost.append)
    order, gaps, cond = _record_gaps(board)
    fake.send_event(P.EV_SCAN_DONE)
    fake.lose_event_frames(EVENT_SEQ_MOD - 3)   # the count runs 2 back: the board is asked
    fake.send_event(P.EV_SCAN_DONE)
    with cond:
        assert cond.wait_for(lambda: len(gaps) == 1 and len(order) == 3, WAIT_S)
    # The board was asked (a second handshake) and still has its boot id: no reset.
    assert _wait(lambda: [r[1] for r in fake.requests].count("handshake") == 2)
    assert board.call("echo", b"x") == b"x"
    assert lost == [] and board.host_counters()["resets"] == 0


def _wait(pred, timeout: float = WAIT_S) -> bool:
    import time
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_event_frame_without_a_sequence_number_is_a_bad_message(board, fake):
    seen, cond = collect(board)
    fake.send_message([P.MSG_EVT, "x", P.EV_SCAN_DONE])
    fake.send_event(P.EV_SCAN_DONE)
    with cond:
        assert cond.wait_for(lambda: len(seen) == 1, WAIT_S)
    assert board.host_counters()["bad_messages"] == 1


def test_duplicate_response_is_ignored_and_counted(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: (0, None)
    board.call("gap_scan_stop")
    rid = fake.requests[-1][0]
    fake.send_message([P.MSG_RSP, rid, 0, None])
    assert board.call("echo", b"x") == b"x"
    c = board.host_counters()
    assert (c["unmatched_responses"], c["late_responses"]) == (1, 0)


def test_lost_response_fails_the_call_with_call_timeout(board, fake):
    from blebridge import CallTimeout
    fake.handlers["gap_scan_stop"] = lambda args: None      # the response never comes
    with pytest.raises(CallTimeout):
        board.call("gap_scan_stop", timeout=0.2)
    assert board.host_counters()["calls_timed_out"] == 1


def test_event_seq_tracker_reports_jump_modulo_its_range():
    s = EventSeq()
    assert s.frame(10) is None               # unsynchronised: the first frame sets the count
    gap = s.frame(5)                         # went "back": MOD-5 frames lost, or a lost BOOT
    assert gap is not None and gap.frames_lost == EVENT_SEQ_MOD - 6   # 11 .. MOD-1, 0 .. 4
