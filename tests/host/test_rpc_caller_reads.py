"""RPC client, "caller reads": a thread inside board.call() reads the port itself while it
holds the read token, and must then behave exactly as the reader thread would."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest

from blebridge import BoardLost, BoardReset, CallTimeout, Event, open_board
from blebridge import protocol as P
from blebridge.rpc import READER_RESUME_S, Board
from blebridge.transport import open_transport
from event_log import collect

#: "Promptly" / "at once" in these tests (s): far below the 30 s timeouts of the calls they
#: make (so a call that waited for its timeout fails the test), far above the scheduling delays
#: of a loaded machine (so the test never depends on timing).
PROMPTLY_S = 5.0


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


class BlockedCall:
    """``board.call(method)`` on its own thread; the fake board does not answer it."""

    def __init__(self, board: Board, fake: Any, method: str = "gap_scan_stop", timeout: float = 10) -> None:
        fake.handlers[method] = lambda args: None
        self.board = board
        self.outcome: list[Any] = []
        n = len(fake.requests)
        self.thread = threading.Thread(target=self._run, args=(method, timeout), daemon=True)
        self.thread.start()
        assert fake.wait_requests(n + 1)
        self.rid = fake.requests[n][0]

    def _run(self, method: str, timeout: float) -> None:
        try:
            self.outcome.append(self.board.call(method, timeout=timeout))
        except BaseException as exc:
            self.outcome.append(exc)

    def holds_token(self) -> bool:
        token = self.board._token
        return token is not None and token.holder == self.thread.ident

    def result(self, timeout: float = 5.0) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the blocked call did not end"
        return self.outcome[0]




def test_a_waiting_caller_reads_the_port_itself(board, fake):
    blocked = BlockedCall(board, fake)
    assert wait_until(blocked.holds_token)
    fake.send_message([P.MSG_RSP, blocked.rid, 0, "done"])
    assert blocked.result() == "done"


def test_responses_to_other_calls_read_by_a_caller_reach_their_futures(board, fake):
    blocked = BlockedCall(board, fake)
    assert wait_until(blocked.holds_token)
    futs = [board.call_nowait("echo", bytes([i])) for i in range(20)]
    assert [f.result(5) for f in futs] == [bytes([i]) for i in range(20)]
    assert blocked.holds_token()                  # it read them: the reader stayed parked
    fake.send_message([P.MSG_RSP, blocked.rid, 0, None])
    assert blocked.result() is None


def test_events_read_by_a_caller_stay_in_order_with_events_read_by_the_reader(board, fake):
    seen, cond = collect(board)
    for i in range(100):                          # read by the reader thread
        fake.send_event(P.EV_GATTC_NOTIFY, 0, 21, i.to_bytes(2, "little"))
    blocked = BlockedCall(board, fake)
    assert wait_until(blocked.holds_token)
    for i in range(100, 200):                     # read by the blocked caller
        fake.send_event(P.EV_GATTC_NOTIFY, 0, 21, i.to_bytes(2, "little"))
    fake.send_message([P.MSG_RSP, blocked.rid, 0, None])
    for i in range(200, 300):                     # read by the reader again
        fake.send_event(P.EV_GATTC_NOTIFY, 0, 21, i.to_bytes(2, "little"))
    assert blocked.result() is None
    with cond:
        assert cond.wait_for(lambda: len(seen) == 300, 5)
    assert [int.from_bytes(ev.fields[2], "little") for ev in seen] == list(range(300))


def test_many_callers_on_many_threads_each_get_their_own_answer(board, fake):
    fake.hold = True
    n = 8
    out: dict[int, Any] = {}

    def worker(k: int) -> None:
        out[k] = board.call("echo", bytes([k]), timeout=10)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    assert fake.wait_requests(1 + n)
    fake.release_held(reverse=True)               # the first caller to wait is answered last
    for t in threads:
        t.join(10)
    assert out == {k: bytes([k]) for k in range(n)}
    assert wait_until(lambda: board._token.holder == 0)


def test_a_caller_timing_out_while_reading_hands_the_port_back_to_the_reader(board, fake):
    seen, cond = collect(board)
    fake.handlers["gap_scan_stop"] = lambda args: None
    with pytest.raises(CallTimeout):
        board.call("gap_scan_stop", timeout=0.2)
    assert board._token.holder == 0
    fake.send_event(P.EV_SCAN_DONE)               # nobody calls: only the reader can read it
    fut = board.call_nowait("echo", b"after")
    with cond:
        assert cond.wait_for(lambda: len(seen) == 1, 5)
    assert fut.result(5) == b"after"


def test_a_queued_caller_timing_out_leaves_the_queue(board, fake):
    blocked = BlockedCall(board, fake)
    assert wait_until(blocked.holds_token)
    fake.handlers["gap_scan_start"] = lambda args: None
    with pytest.raises(CallTimeout):
        board.call("gap_scan_start", 1000, 30000, 30000, True, False, timeout=0.2)
    assert list(board._token.waiters) == []
    fake.send_message([P.MSG_RSP, blocked.rid, 0, None])
    assert blocked.result() is None
    assert board.call("echo", b"x") == b"x"


def test_a_caller_reading_sweeps_the_deadlines_of_call_nowait_futures(board, fake):
    blocked = BlockedCall(board, fake)
    assert wait_until(blocked.holds_token)
    fake.handlers["gap_scan_start"] = lambda args: None
    fut = board.call_nowait("gap_scan_start", 1000, 30000, 30000, True, False, timeout=0.2)
    with pytest.raises(CallTimeout):
        fut.result(2)
    assert blocked.holds_token()
    fake.send_message([P.MSG_RSP, blocked.rid, 0, None])
    blocked.result()


def test_unplug_while_a_caller_reads_fails_every_pending_call(board, fake):
    lost: list[BaseException] = []
    board.add_lost_listener(lost.append)
    fake.handlers["gap_scan_start"] = lambda args: None
    other = board.call_nowait("gap_scan_start", 1000, 30000, 30000, True, False, timeout=30)
    blocked = BlockedCall(board, fake, timeout=30)
    assert wait_until(blocked.holds_token)
    t0 = time.monotonic()
    fake.unplug()
    assert isinstance(blocked.result(), BoardLost)
    with pytest.raises(BoardLost):
        other.result(5)
    assert time.monotonic() - t0 < PROMPTLY_S
    assert wait_until(lambda: len(lost) == 1) and type(lost[0]) is BoardLost
    reader = board._reader
    assert wait_until(lambda: not reader.is_alive())
    with pytest.raises(BoardLost):
        board.call("echo", b"x")


def test_reset_while_a_caller_reads_fails_its_call_with_board_reset(board, fake):
    blocked = BlockedCall(board, fake, timeout=30)
    assert wait_until(blocked.holds_token)
    t0 = time.monotonic()
    fake.reboot(boot_id=9)
    assert isinstance(blocked.result(), BoardReset)
    assert time.monotonic() - t0 < PROMPTLY_S
    assert wait_until(lambda: board.info.boot_id == 9)
    assert board.call("echo", b"again") == b"again"


def test_close_while_a_caller_reads_fails_its_call_promptly(board, fake):
    blocked = BlockedCall(board, fake, timeout=30)
    assert wait_until(blocked.holds_token)
    t0 = time.monotonic()
    board.close()
    assert isinstance(blocked.result(), BoardLost)
    assert time.monotonic() - t0 < PROMPTLY_S


def test_reopen_while_a_caller_reads_then_calls_work_again(tmp_path):
    from serial_fakeboard import FakeBoard
    first = FakeBoard(boot_id=1)
    link = tmp_path / "ttyFAKE"
    link.symlink_to(first.path)
    board = open_board(str(link), timeout=5)
    try:
        blocked = BlockedCall(board, first, timeout=30)
        assert wait_until(blocked.holds_token)
        second = FakeBoard(boot_id=2)
        link.unlink()
        link.symlink_to(second.path)
        assert board.reopen().boot_id == 2
        assert isinstance(blocked.result(), BoardLost)
        assert board.call("echo", b"new link") == b"new link"
        first.close()
        second.close()
    finally:
        board.close()


def test_done_callback_calling_board_call_while_its_thread_reads_raises(board, fake):
    blocked = BlockedCall(board, fake)
    assert wait_until(blocked.holds_token)
    raised: list[BaseException] = []

    def callback(f: Any) -> None:
        try:
            board.call("echo", b"nested")
        except RuntimeError as exc:
            raised.append(exc)

    fake.handlers["gap_scan_start"] = lambda args: None
    n = len(fake.requests)
    fut = board.call_nowait("gap_scan_start", 1000, 30000, 30000, True, False)
    fut.add_done_callback(callback)
    assert fake.wait_requests(n + 1)
    fake.send_message([P.MSG_RSP, fake.requests[n][0], 0, "x"])
    assert fut.result(5) == "x"
    assert wait_until(lambda: len(raised) == 1)
    assert "deadlock" in str(raised[0])
    fake.send_message([P.MSG_RSP, blocked.rid, 0, None])
    blocked.result()


def test_back_to_back_calls_leave_the_reader_thread_parked(board, fake, monkeypatch):
    token = board._token
    reads_by_reader: list[int] = []
    reader_ident = board._reader.ident
    original = board._on_chunk

    def on_chunk(data: bytes) -> None:
        if threading.get_ident() == reader_ident:
            reads_by_reader.append(len(data))
        original(data)

    monkeypatch.setattr(board, "_on_chunk", on_chunk)
    for i in range(200):
        assert board.call("echo", bytes([i % 256])) == bytes([i % 256])
    assert reads_by_reader == []
    assert token.holder == 0


def test_the_reader_resumes_soon_after_the_last_call(board, fake):
    seen, cond = collect(board)
    board.call("echo", b"x")
    fake.send_event(P.EV_SCAN_DONE)
    t0 = time.monotonic()
    with cond:
        assert cond.wait_for(lambda: len(seen) == 1, 5)
    assert time.monotonic() - t0 < READER_RESUME_S + PROMPTLY_S


class NoDescriptorPort:
    """A pyserial port seen only through read/write (like socket:// or rfc2217://)."""

    def __init__(self, path: str) -> None:
        self._ser = open_transport(path)
        self.timeout = self._ser.timeout

    @property
    def in_waiting(self) -> int:
        return self._ser.in_waiting

    def read(self, size: int = 1) -> bytes:
        return self._ser.read(size)

    def write(self, data: bytes) -> int:
        return self._ser.write(data)

    def cancel_read(self) -> None:
        self._ser.cancel_read()

    def close(self) -> None:
        self._ser.close()


def test_ports_without_a_descriptor_are_read_by_the_reader_thread_only(fake):
    b = Board(NoDescriptorPort(fake.path), timeout=5)
    try:
        assert b._token is None
        assert b.handshake().board == "fake"
        futs = [b.call_nowait("echo", bytes([i])) for i in range(50)]
        assert b.call("echo", b"sync") == b"sync"
        assert [f.result(5) for f in futs] == [bytes([i]) for i in range(50)]
        fake.handlers["gap_scan_stop"] = lambda args: None
        with pytest.raises(CallTimeout):
            b.call("gap_scan_stop", timeout=0.2)
    finally:
        b.close()


def test_the_reader_thread_reads_a_burst_without_parking_between_chunks(board, fake, monkeypatch):
    seen, cond = collect(board)
    token = board._token
    time.sleep(READER_RESUME_S + 0.05)            # the handshake's caller is long gone
    parks: list[int] = []
    original = token.reader_may_select

    def may_select(park_s: float) -> bool:
        ok = original(park_s)
        if not ok:
            parks.append(1)
        return ok

    monkeypatch.setattr(token, "reader_may_select", may_select)
    for i in range(50):                           # 50 chunks: the reader wakes for each
        fake.send_event(P.EV_BENCH, i, b"p")
        time.sleep(0.0005)
    with cond:
        assert cond.wait_for(lambda: len(seen) == 50, 5)
    assert parks == []


def test_calls_acalls_listener_calls_and_events_mixed_on_many_threads_all_end_in_order(board, fake):
    seen: list[int] = []
    listener_answers: list[bytes] = []
    done = threading.Event()
    total_events = 300

    def listener(ev: Event) -> None:
        if ev.code != P.EV_GATTC_NOTIFY:
            return
        seen.append(int.from_bytes(ev.fields[2], "little"))
        if len(seen) % 50 == 0:                   # a listener may make blocking calls
            listener_answers.append(board.call("echo", ev.fields[2]))
        if len(seen) == total_events:
            done.set()

    board.add_event_listener(listener)
    errors: list[Any] = []

    def caller(k: int) -> None:
        for i in range(150):
            data = bytes([k, i % 256])
            if board.call("echo", data) != data:
                errors.append((k, i))

    def events() -> None:
        for i in range(total_events):
            fake.send_event(P.EV_GATTC_NOTIFY, 0, 21, i.to_bytes(2, "little"))

    async def acalls() -> list[bytes]:
        import asyncio
        return list(await asyncio.gather(*(board.acall("echo", bytes([i])) for i in range(100))))

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=events))
    for t in threads:
        t.start()
    import asyncio
    assert asyncio.run(acalls()) == [bytes([i]) for i in range(100)]
    for t in threads:
        t.join(30)
    assert errors == []
    assert done.wait(10)
    assert seen == list(range(total_events))
    assert len(listener_answers) == total_events // 50
    assert wait_until(lambda: board._token.holder == 0 and not board._token.waiters)
