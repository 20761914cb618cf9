"""A board that dies or resets while a call is pending: the caller gets a clear exception fast,
nothing hangs, and the board works again afterwards.

tests/host/test_sim_board.py covers a reset or kill with no call in flight; here a call is
pending at the moment it happens. A call is kept pending deterministically: by stopping the
board process (SIGSTOP), or by a host that stops reading (a gated transport) so the board's
answer is stuck in its transmit queue when it resets.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Optional

import pytest

from blebridge import Board, BoardLost, BoardReset, open_board
from blebridge.transport.serial_port import READ_POLL_S, open_serial

#: The longest a pending call may take to fail once its board is gone (s): far below the 30 s
#: timeouts of the calls here, far above a loaded machine's scheduling delays. (How fast it
#: really is, on an idle machine, is well under a second.)
LOST_WITHIN_S = 10.0


class GatedTransport:
    """A pyserial port whose reads return nothing while the gate is shut: a host that stalls.

    It hides the port's descriptor so that the RPC client reads through read().
    """

    def __init__(self, ser: Any) -> None:
        self._ser = ser
        self.gate = threading.Event()
        self.gate.set()
        self.blebridge_spec = getattr(ser, "blebridge_spec", "gated")

    @property
    def is_open(self) -> bool:
        return self._ser.is_open

    @property
    def in_waiting(self) -> int:
        return self._ser.in_waiting if self.gate.is_set() else 0

    @property
    def timeout(self) -> Optional[float]:
        return self._ser.timeout

    def read(self, size: int = 1) -> bytes:
        if not self.gate.wait(READ_POLL_S):
            return b""
        return self._ser.read(size)

    def write(self, data: bytes) -> Optional[int]:
        return self._ser.write(data)

    def flush(self) -> None:
        self._ser.flush()

    def cancel_read(self) -> None:
        self._ser.cancel_read()

    def close(self) -> None:
        self._ser.close()


def test_call_pending_when_board_process_is_killed_fails_with_board_lost(sim: Any, spec: str):
    with open_board(spec) as board:
        os.kill(sim.pid, signal.SIGSTOP)       # a stopped board cannot answer: the call pends
        try:
            fut = board.call_nowait("echo", b"pending", timeout=30)
            time.sleep(0.3)
            assert not fut.done()
        finally:
            t0 = time.monotonic()
            os.kill(sim.pid, signal.SIGKILL)
        exc = fut.exception(timeout=LOST_WITHIN_S)
        assert time.monotonic() - t0 < LOST_WITHIN_S
        assert isinstance(exc, BoardLost) and not isinstance(exc, BoardReset)
        assert "echo" in str(exc) and "link lost" in str(exc)


def test_call_after_board_process_is_killed_fails_at_once_with_board_lost(sim: Any, spec: str):
    with open_board(spec) as board:
        os.kill(sim.pid, signal.SIGKILL)
        deadline = time.monotonic() + LOST_WITHIN_S
        while not board.is_lost and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        with pytest.raises(BoardLost, match="gatts_read"):
            board.call("gatts_read", 1, timeout=30)
        assert time.monotonic() - t0 < LOST_WITHIN_S


def test_killed_board_reopened_answers_calls(sim: Any, spec: str):
    with open_board(spec) as board:
        os.kill(sim.pid, signal.SIGKILL)
        with pytest.raises(BoardLost):
            board.call("echo", b"x", timeout=LOST_WITHIN_S + 1)
        info = board.reopen()
        assert info is not None and board.transport.sim_board.pid != sim.pid
        assert board.call("echo", b"back") == b"back"


def test_call_pending_when_board_resets_fails_with_board_reset(sim: Any):
    gated = GatedTransport(open_serial(sim.pty))
    board = Board(gated)
    try:
        board.handshake()
        lost: list[BaseException] = []
        told = threading.Event()
        board.add_lost_listener(lambda exc: (lost.append(exc), told.set()))
        gated.gate.clear()
        # The board fills the pseudo-terminal with BENCH events the host no longer reads, so
        # the answer to the echo below stays in the board's transmit queue.
        board.call_nowait("bench_events", 1_000_000, 1000, timeout=30)
        time.sleep(0.5)
        fut = board.call_nowait("echo", b"pending", timeout=30)
        time.sleep(0.3)
        sim.reset()
        time.sleep(0.3)
        t0 = time.monotonic()
        gated.gate.set()
        exc = fut.exception(timeout=LOST_WITHIN_S)
        assert time.monotonic() - t0 < LOST_WITHIN_S
        assert isinstance(exc, BoardReset)
        assert "echo" in str(exc) and "restarted" in str(exc)
        # Lost listeners run on the dispatcher thread, after the pending calls have failed.
        assert told.wait(LOST_WITHIN_S) and isinstance(lost[0], BoardReset)
    finally:
        gated.gate.set()
        board.close()


def test_board_answers_after_a_reset_with_a_call_pending(sim: Any):
    gated = GatedTransport(open_serial(sim.pty))
    board = Board(gated)
    try:
        old_boot = board.handshake().boot_id
        gated.gate.clear()
        board.call_nowait("bench_events", 1_000_000, 1000, timeout=30)
        time.sleep(0.5)
        fut = board.call_nowait("echo", b"pending", timeout=30)
        time.sleep(0.3)
        sim.reset()
        time.sleep(0.3)
        gated.gate.set()
        assert isinstance(fut.exception(timeout=LOST_WITHIN_S), BoardReset)
        # The client handshakes again by itself after a reset.
        deadline = time.monotonic() + 5
        while (board.info is None or board.info.boot_id == old_boot) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert board.info.boot_id != old_boot
        assert board.call("echo", b"after reset") == b"after reset"
        assert board.diagnostics()["frames_rx"] >= 1
    finally:
        gated.gate.set()
        board.close()
