"""A simulated board's process killed (SIGKILL) or stopped (SIGSTOP) while the host uses it.

What a user gets: a call pending on a killed board raises BoardLost, naming the call and why,
before its timeout (the exception type proves it: a call that ran out of time would raise
CallTimeout); the same ``sim:NAME`` opens again at once. A stopped board is a slow board, not
a lost one: calls time out (CallTimeout), and once it runs again it answers the next call, its
late answer to the timed-out call being ignored (docs/design.md, "Board process faults").
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

import proc_table
import pytest

from blebridge import BoardLost, BoardReset, CallTimeout, open_board

#: Timeout of the calls that are meant to fail by other means than time (s): far longer than
#: any loss takes to be noticed, even on a loaded machine.
LONG_CALL_TIMEOUT_S = 60.0
#: Timeout of the calls that are meant to run out of time on a stopped board (s).
SHORT_CALL_TIMEOUT_S = 1.0


def call_in_thread(board: Any, *call: Any, timeout: float) -> tuple[threading.Thread, dict]:
    """board.call(*call) on another thread; the dict gets "result" or "error" when it ends."""
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = board.call(*call, timeout=timeout)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def pending(board: Any) -> int:
    return board.host_counters()["calls_pending"]


def test_call_pending_on_a_killed_board_process_raises_board_lost_naming_the_kill(
        open_sim: Callable[..., Any], air_socket: str):
    board = open_sim("killed")
    pid = proc_table.one_board(air_socket, "killed").pid
    os.kill(pid, signal.SIGSTOP)           # a stopped board cannot answer: the call stays pending
    try:
        thread, out = call_in_thread(board, "echo", b"pending", timeout=LONG_CALL_TIMEOUT_S)
        proc_table.wait_for(lambda: pending(board) == 1, "the echo call is pending")
    finally:
        os.kill(pid, signal.SIGKILL)
    thread.join(LONG_CALL_TIMEOUT_S * 2)
    exc = out.get("error")
    assert isinstance(exc, BoardLost) and not isinstance(exc, BoardReset), out
    assert "echo" in str(exc) and "killed by SIGKILL" in str(exc)


def test_call_after_the_board_process_was_killed_raises_board_lost(
        open_sim: Callable[..., Any], air_socket: str):
    board = open_sim("killed-idle")
    os.kill(proc_table.one_board(air_socket, "killed-idle").pid, signal.SIGKILL)
    with pytest.raises(BoardLost, match="killed by SIGKILL"):
        board.call("ble_active", timeout=LONG_CALL_TIMEOUT_S)


def test_same_sim_name_opens_again_after_its_board_process_was_killed(
        open_sim: Callable[..., Any], air_socket: str):
    first = open_sim("again")
    old = proc_table.one_board(air_socket, "again").pid
    os.kill(old, signal.SIGKILL)
    with pytest.raises(BoardLost):
        first.call("echo", b"x", timeout=LONG_CALL_TIMEOUT_S)
    first.close()
    second = open_sim("again")
    assert second.call("echo", b"back") == b"back"
    assert [p.pid for p in proc_table.boards(air_socket, "again")] != [old]


def test_call_to_a_stopped_board_process_raises_call_timeout(
        open_sim: Callable[..., Any], air_socket: str):
    board = open_sim("stopped")
    pid = proc_table.one_board(air_socket, "stopped").pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(CallTimeout, match="echo"):
            board.call("echo", b"late", timeout=SHORT_CALL_TIMEOUT_S)
        assert not board.is_lost
    finally:
        os.kill(pid, signal.SIGCONT)


def test_resumed_board_answers_the_next_call_and_its_late_answer_is_ignored(
        open_sim: Callable[..., Any], air_socket: str):
    board = open_sim("resumed")
    pid = proc_table.one_board(air_socket, "resumed").pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(CallTimeout):
            board.call("echo", b"late", timeout=SHORT_CALL_TIMEOUT_S)
    finally:
        os.kill(pid, signal.SIGCONT)
    # The board answers the timed-out echo first; that answer must not become this call's.
    assert board.call("echo", b"next", timeout=LONG_CALL_TIMEOUT_S) == b"next"
    assert not board.is_lost


def test_board_opened_on_a_thread_that_ended_keeps_running(spec_of: Callable[[str], str],
                                                           air_socket: str):
    # The board process follows the process that owns it, not the thread that started it.
    opened: list[Any] = []
    opener = threading.Thread(target=lambda: opened.append(open_board(spec_of("threaded"))))
    opener.start()
    opener.join(LONG_CALL_TIMEOUT_S)
    board = opened[0]
    try:
        assert board.call("echo", b"still here", timeout=LONG_CALL_TIMEOUT_S) == b"still here"
        assert not board.is_lost
    finally:
        board.close()
