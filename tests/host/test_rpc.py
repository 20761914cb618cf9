"""RPC client against the fake board: calls, events, timeouts, resets, unplugs, asyncio."""
from __future__ import annotations

import asyncio
import logging
import threading
import time

import cbor2
import pytest

from blebridge import (BoardError, BoardLost, BoardReset, CallTimeout, Event, VersionMismatch,
                       open_board)
from blebridge import protocol as P
from blebridge.framing import encode_frame
from blebridge.rpc import Board
from blebridge.transport import open_transport
from serial_fakeboard import FakeBoard
from event_log import collect

#: "Promptly" / "at once" in these tests (s): far below the 30 s timeouts of the calls they
#: make (so a call that waited for its timeout fails the test), far above the scheduling delays
#: of a loaded machine (so the test never depends on timing).
PROMPTLY_S = 5.0




def wait_for(cond: threading.Condition, pred, timeout: float = 5.0) -> bool:
    with cond:
        return cond.wait_for(pred, timeout)


def test_handshake_fills_board_info(board):
    assert board.info.proto == (P.PROTO_MAJOR, P.PROTO_MINOR)
    assert board.info.board == "fake"
    assert board.info.addr_str == "C6:05:04:03:02:01"
    assert board.info.caps["max_connections"] == 4


def test_call_returns_the_result(board):
    assert board.call("echo", b"\x00\x01hello") == b"\x00\x01hello"


def test_non_zero_status_raises_board_error_with_name_and_method(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: (P.STATUS["EBUSY"], None)
    with pytest.raises(BoardError) as ei:
        board.call("gap_scan_stop")
    e = ei.value
    assert (e.status, e.status_name, e.method, e.errno) == (16, "EBUSY", "gap_scan_stop", 16)
    assert "gap_scan_stop" in str(e) and "EBUSY" in str(e)
    assert isinstance(e, OSError)


def test_protocol_status_has_no_errno(board, fake):
    fake.handlers["gatts_read"] = lambda args: (P.STATUS["UNKNOWN_HANDLE"], None)
    with pytest.raises(BoardError) as ei:
        board.call("gatts_read", 99)
    assert ei.value.errno is None and ei.value.status_name == "UNKNOWN_HANDLE"


def test_many_calls_in_flight_are_matched_by_id(board):
    futs = [board.call_nowait("echo", i.to_bytes(2, "little")) for i in range(500)]
    assert [f.result(10) for f in futs] == [i.to_bytes(2, "little") for i in range(500)]


def test_out_of_order_responses_reach_their_own_callers(board, fake):
    fake.hold = True
    futs = [board.call_nowait("echo", bytes([i])) for i in range(20)]
    assert fake.wait_requests(1 + 20)              # handshake + 20 echoes
    fake.release_held(reverse=True)
    assert [f.result(5) for f in futs] == [bytes([i]) for i in range(20)]


def test_call_times_out_naming_method_and_timeout(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: None
    t0 = time.monotonic()
    with pytest.raises(CallTimeout) as ei:
        board.call("gap_scan_stop", timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 0.3 + PROMPTLY_S
    assert "gap_scan_stop" in str(ei.value) and "0.3 s" in str(ei.value)
    assert isinstance(ei.value, TimeoutError)


def test_call_nowait_future_fails_at_its_deadline(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: None
    fut = board.call_nowait("gap_scan_stop", timeout=0.2)
    with pytest.raises(CallTimeout):
        fut.result(2)


def test_late_response_after_timeout_is_counted_not_delivered(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: None
    with pytest.raises(CallTimeout):
        board.call("gap_scan_stop", timeout=0.1)
    rid = fake.requests[-1][0]
    fake.send_message([P.MSG_RSP, rid, 0, None])
    assert board.call("echo", b"x") == b"x"
    assert board.host_counters()["late_responses"] == 1
    assert board.host_counters()["unmatched_responses"] == 0


def test_wrong_argument_count_raises_type_error_before_sending(board, fake):
    n = len(fake.requests)
    with pytest.raises(TypeError, match="echo"):
        board.call("echo")
    assert len(fake.requests) == n


def test_too_long_bytes_argument_raises_value_too_large_locally(board):
    with pytest.raises(BoardError) as ei:
        board.call("echo", bytes(P.LIMITS["MAX_ATTR_LEN"] + 1))
    assert ei.value.status_name == "VALUE_TOO_LARGE"


def test_events_reach_listeners_in_order(board, fake):
    seen, cond = collect(board)
    for i in range(200):
        fake.send_event(P.EV_GATTC_NOTIFY, 0, 21, bytes([i]))
    assert wait_for(cond, lambda: len(seen) == 200)
    assert [ev.fields[2][0] for ev in seen] == list(range(200))
    assert seen[0].name == "GATTC_NOTIFY"


def test_event_batch_is_unpacked_in_order(board, fake):
    seen, cond = collect(board)
    fake.send_event(P.EV_SCAN_DONE)
    fake.send_batch([[P.EV_BENCH, i, b"p"] for i in range(50)])
    fake.send_event(P.EV_ADVERTISE_DONE, 0)
    assert wait_for(cond, lambda: len(seen) == 52)
    assert [ev.name for ev in seen] == ["SCAN_DONE"] + ["BENCH"] * 50 + ["ADVERTISE_DONE"]
    assert [ev.fields[0] for ev in seen[1:51]] == list(range(50))


def test_no_event_is_lost_in_a_burst(board, fake):
    seen, cond = collect(board)
    board.call("bench_events", 20000, 20)
    assert wait_for(cond, lambda: len(seen) == 20000, 20)
    assert [ev.fields[0] for ev in seen] == list(range(20000))


def test_listener_may_make_blocking_calls(board, fake):
    answers = []
    done = threading.Event()

    def listener(ev: Event) -> None:
        answers.append(board.call("echo", ev.fields[2]))
        done.set()

    board.add_event_listener(listener)
    fake.send_event(P.EV_GATTS_WRITE, 0, 21, b"from-listener")
    assert done.wait(5)
    assert answers == [b"from-listener"]


def test_listener_exception_is_logged_and_dispatch_continues(board, fake, caplog):
    seen, cond = collect(board)

    def bad(ev: Event) -> None:
        raise RuntimeError("listener bug")

    board.add_event_listener(bad)
    with caplog.at_level(logging.ERROR, logger="blebridge.rpc"):
        fake.send_event(P.EV_SCAN_DONE)
        fake.send_event(P.EV_SCAN_DONE)
        assert wait_for(cond, lambda: len(seen) == 2)
        time.sleep(0.05)
    assert "listener bug" in caplog.text and "Traceback" in caplog.text
    assert board.host_counters()["listener_errors"] == 2


def test_removed_listener_gets_no_more_events(board, fake):
    seen, cond = collect(board)
    other: list[Event] = []
    board.add_event_listener(other.append)
    board.remove_event_listener(other.append)
    fake.send_event(P.EV_SCAN_DONE)
    assert wait_for(cond, lambda: len(seen) == 1)
    assert other == []


def test_acall_returns_the_result_in_asyncio(board):
    async def main():
        return await asyncio.gather(*(board.acall("echo", bytes([i])) for i in range(50)))
    assert asyncio.run(main()) == [bytes([i]) for i in range(50)]


def test_acall_raises_board_errors(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: (P.STATUS["EPERM"], None)

    async def main():
        await board.acall("gap_scan_stop")
    with pytest.raises(BoardError):
        asyncio.run(main())


def test_acall_times_out(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: None

    async def main():
        await board.acall("gap_scan_stop", timeout=0.2)
    with pytest.raises(CallTimeout):
        asyncio.run(asyncio.wait_for(main(), 3))


def test_boot_with_new_boot_id_fails_pending_calls_promptly(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: None
    fut = board.call_nowait("gap_scan_stop", timeout=30)
    assert fake.wait_requests(2)
    t0 = time.monotonic()
    fake.reboot(boot_id=2)
    with pytest.raises(BoardReset):
        fut.result(5)
    assert time.monotonic() - t0 < PROMPTLY_S


def test_boot_with_new_boot_id_tells_lost_listeners_and_handshakes_again(board, fake):
    lost: list[BaseException] = []
    got = threading.Event()
    board.add_lost_listener(lambda exc: (lost.append(exc), got.set()))
    fake.reboot(boot_id=7)
    assert got.wait(5)
    assert isinstance(lost[0], BoardReset)
    deadline = time.monotonic() + 5
    while board.info.boot_id != 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert board.info.boot_id == 7
    assert board.call("echo", b"after") == b"after"


def test_boot_with_the_same_boot_id_is_just_an_event(board, fake):
    seen, cond = collect(board)
    lost: list[BaseException] = []
    board.add_lost_listener(lost.append)
    fake.send_event(P.EV_BOOT, fake.boot_id, 1, 0)
    assert wait_for(cond, lambda: len(seen) == 1)
    assert lost == [] and seen[0].name == "BOOT"


def test_unplug_fails_pending_calls_promptly(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: None
    fut = board.call_nowait("gap_scan_stop", timeout=30)
    assert fake.wait_requests(2)
    t0 = time.monotonic()
    fake.unplug()
    with pytest.raises(BoardLost):
        fut.result(5)
    assert time.monotonic() - t0 < PROMPTLY_S


def test_unplug_tells_lost_listeners(board, fake):
    got = threading.Event()
    lost: list[BaseException] = []
    board.add_lost_listener(lambda exc: (lost.append(exc), got.set()))
    fake.unplug()
    assert got.wait(5)
    assert type(lost[0]) is BoardLost


def test_calls_after_unplug_fail_at_once(board, fake):
    fake.unplug()
    deadline = time.monotonic() + 5
    while not board.is_lost and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    with pytest.raises(BoardLost):
        board.call("echo", b"x")
    assert time.monotonic() - t0 < PROMPTLY_S


def test_reopen_after_unplug_works_again(tmp_path):
    # The spec is a symlink that the test points at a new fake board, as a USB port
    # re-enumerates under the same /dev/serial/by-id name.
    first = FakeBoard(boot_id=1)
    link = tmp_path / "ttyFAKE"
    link.symlink_to(first.path)
    board = open_board(str(link), timeout=5)
    try:
        first.unplug()
        second = FakeBoard(boot_id=2)
        link.unlink()
        link.symlink_to(second.path)
        info = board.reopen()
        assert info.boot_id == 2
        assert board.call("echo", b"again") == b"again"
        second.close()
    finally:
        board.close()


def test_close_fails_pending_calls(board, fake):
    fake.handlers["gap_scan_stop"] = lambda args: None
    fut = board.call_nowait("gap_scan_stop", timeout=30)
    board.close()
    with pytest.raises(BoardLost):
        fut.result(2)


def test_context_manager_closes_the_board(fake):
    with open_board(fake.path) as b:
        b.call("echo", b"x")
    assert b.is_lost
    with pytest.raises(BoardLost):
        b.call("echo", b"x")


def test_major_version_mismatch_names_both_versions_and_the_flash_command():
    fb = FakeBoard(proto=(P.PROTO_MAJOR + 1, 3))
    try:
        with pytest.raises(VersionMismatch) as ei:
            open_board(fb.path)
        msg = str(ei.value)
        assert f"{P.PROTO_MAJOR}.{P.PROTO_MINOR}" in msg and f"{P.PROTO_MAJOR + 1}.3" in msg
        assert f"blebridge flash --port {fb.path}" in msg
        assert "\n" not in msg
    finally:
        fb.close()


def test_version_mismatch_on_a_sim_board_names_make_firmware():
    fb = FakeBoard(proto=(P.PROTO_MAJOR + 1, 0))
    fb.handlers["handshake"] = lambda args: (0, dict(fb.handshake_result(), port="sim"))
    try:
        with pytest.raises(VersionMismatch, match="make firmware"):
            open_board(fb.path)
    finally:
        fb.close()


def test_handshake_timeout_raises_call_timeout_and_releases_the_port():
    fb = FakeBoard()
    fb.handlers["handshake"] = lambda args: None
    try:
        import blebridge.rpc.board as rpc_board
        old, rpc_board.HANDSHAKE_TIMEOUT_S = rpc_board.HANDSHAKE_TIMEOUT_S, 0.3
        try:
            with pytest.raises(CallTimeout, match="handshake"):
                open_board(fb.path)
        finally:
            rpc_board.HANDSHAKE_TIMEOUT_S = old
        del fb.handlers["handshake"]
        open_board(fb.path).close()          # not left locked by the failed open
    finally:
        fb.close()


def test_handshake_lost_on_the_link_is_repeated_and_the_open_succeeds():
    fb = FakeBoard()
    unanswered: list[object] = []

    def lose_the_first_two(args):
        if len(unanswered) < 2:
            unanswered.append(args)
            return None                      # as if the request or its answer was lost
        del fb.handlers["handshake"]
        return (0, fb.handshake_result())

    fb.handlers["handshake"] = lose_the_first_two
    try:
        with open_board(fb.path) as b:
            assert b.info.board == "fake" and len(unanswered) == 2
    finally:
        fb.close()


def test_garbage_and_bad_crc_from_the_board_are_counted_and_harmless(board, fake):
    fake.send_raw(b"boot text\r\n\x00")
    fake.send_raw(b"\x05\x01\x02\x03\x04\x00")            # valid COBS, wrong CRC
    assert board.call("echo", b"ok") == b"ok"
    c = board.host_counters()
    assert c["crc_errors"] == 1 and c["garbage_bytes"] == len(b"boot text\r\n") + 5


def test_non_message_cbor_is_counted_as_bad_message(board, fake):
    fake.send_message([9, 9, 9])
    assert board.call("echo", b"ok") == b"ok"
    assert board.host_counters()["bad_messages"] == 1


def test_a_map_message_is_a_bad_message_and_the_link_stays_up(board, fake):
    # found by tests/host/test_message_properties.py: msg[:4] on a map raised in the reader
    fake.send_message({0: 1, 1: 2, 2: 0, 3: None})
    assert board.call("echo", b"ok") == b"ok"
    assert board.host_counters()["bad_messages"] == 1
    assert not board.is_lost


def test_a_byte_string_message_does_not_answer_a_pending_call(board, fake):
    # b"\x01\x01\x00\x07" indexes like [RSP, id 1, OK, 7]: it must not resolve call 1
    fake.hold = True
    n = len(fake.requests)
    fut = board.call_nowait("echo", b"real")
    assert fake.wait_requests(n + 1)
    fake.send_raw(encode_frame(cbor2.dumps(bytes([P.MSG_RSP, fake.requests[-1][0], 0, 7]))))
    fake.release_held()
    assert fut.result(timeout=5) == b"real"
    assert board.host_counters()["bad_messages"] == 1


def test_an_event_whose_code_is_not_an_integer_is_a_bad_message(board, fake):
    # found by tests/host/test_message_properties.py: [2, []] raised TypeError in the reader
    fake.send_message([P.MSG_EVT, []])
    assert board.call("echo", b"ok") == b"ok"
    assert board.host_counters()["bad_messages"] == 1
    assert not board.is_lost


def test_diagnostics_merges_board_and_host_counters(board):
    d = board.diagnostics()
    assert d["uptime_ms"] == 1234
    assert d["host_frames_rx"] >= 1 and "host_crc_errors" in d


def test_several_boards_in_one_process():
    fakes = [FakeBoard(board=f"b{i}") for i in range(3)]
    boards = [open_board(f.path) for f in fakes]
    try:
        assert [b.info.board for b in boards] == ["b0", "b1", "b2"]
        assert [b.call("echo", bytes([i])) for i, b in enumerate(boards)] == [b"\x00", b"\x01", b"\x02"]
    finally:
        for b in boards:
            b.close()
        for f in fakes:
            f.close()


def test_board_wraps_an_open_transport(fake):
    b = Board(open_transport(fake.path))
    try:
        assert b.handshake().board == "fake"
    finally:
        b.close()


def test_writes_from_many_threads_stay_whole(board):
    errors = []

    def worker(k: int) -> None:
        for i in range(100):
            data = bytes([k]) * (1 + (i % 200))
            if board.call("echo", data) != data:
                errors.append((k, i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert board.host_counters()["crc_errors"] == 0
