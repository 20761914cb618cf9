"""The air process killed (SIGKILL) under running boards.

What a user gets: every board on that air ends its process (a board without a radio is of no
use, and a process left behind would hold the name), a call pending on such a board raises
BoardLost saying the air went away, and opening the same ``sim:NAME`` again starts a new air.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

import proc_table

from blebridge import BoardLost

#: Timeout of calls meant to fail by other means than time (s): far longer than a loss takes.
LONG_CALL_TIMEOUT_S = 60.0


def test_board_processes_end_when_the_air_process_is_killed(open_sim: Callable[..., Any],
                                                            air_socket: str):
    open_sim("alice")
    open_sim("bob")
    assert len(proc_table.boards(air_socket)) == 2
    os.kill(proc_table.one_air(air_socket).pid, signal.SIGKILL)
    proc_table.wait_for(lambda: not proc_table.sim_processes(air_socket),
                        "no board or air process remains")


def test_call_pending_when_the_air_is_killed_raises_board_lost_naming_the_air(
        open_sim: Callable[..., Any], air_socket: str):
    board = open_sim("waiting")
    air = proc_table.one_air(air_socket).pid
    # With the air stopped, a call the board must ask the air about stays pending.
    os.kill(air, signal.SIGSTOP)
    out: dict = {}

    def activate() -> None:
        try:
            out["result"] = board.call("ble_active", True, timeout=LONG_CALL_TIMEOUT_S)
        except BaseException as exc:
            out["error"] = exc

    caller = threading.Thread(target=activate, daemon=True)
    try:
        caller.start()
        proc_table.wait_for(lambda: board.host_counters()["calls_pending"] == 1,
                            "the ble_active call is pending")
    finally:
        os.kill(air, signal.SIGKILL)
    caller.join(LONG_CALL_TIMEOUT_S * 2)
    exc = out.get("error")
    assert isinstance(exc, BoardLost), out
    assert "ble_active" in str(exc) and "the air closed the connection" in str(exc)


def test_same_sim_name_opens_on_a_new_air_after_the_air_was_killed(
        open_sim: Callable[..., Any], air_socket: str):
    first = open_sim("again")
    old_air = proc_table.one_air(air_socket).pid
    os.kill(old_air, signal.SIGKILL)
    proc_table.wait_for(lambda: first.is_lost, "the board is lost")
    first.close()
    second = open_sim("again")
    assert second.call("ble_active", True) is True
    assert proc_table.one_air(air_socket).pid != old_air
