"""MicroPython runtime pieces: ticks arithmetic, micropython.schedule."""
import threading
import time

import pytest

from blebridge.micropython import runtime


def test_ticks_diff_is_signed_across_the_wrap():
    assert runtime.ticks_diff(5, runtime.TICKS_PERIOD - 5) == 10
    assert runtime.ticks_diff(runtime.TICKS_PERIOD - 5, 5) == -10


def test_ticks_add_wraps_at_the_period():
    assert runtime.ticks_add(runtime.TICKS_PERIOD - 1, 2) == 1
    assert runtime.ticks_add(0, -1) == runtime.TICKS_PERIOD - 1


def test_ticks_ms_advances_with_sleep_ms():
    t0 = runtime.ticks_ms()
    runtime.sleep_ms(20)
    assert runtime.ticks_diff(runtime.ticks_ms(), t0) >= 20


def test_install_adds_functions_to_time():
    runtime.install_time_extensions()
    assert time.ticks_diff is runtime.ticks_diff and time.sleep_us is runtime.sleep_us


def test_schedule_runs_the_function_with_its_argument():
    done = threading.Event()
    got = []
    runtime.schedule(lambda arg: (got.append(arg), done.set()), 42)
    assert done.wait(30)
    assert got == [42]


def test_schedule_queue_full_raises_runtime_error():
    gate = threading.Event()
    runtime.schedule(lambda _: gate.wait(5), None)
    time.sleep(0.05)    # the blocker is running, the queue is empty
    try:
        with pytest.raises(RuntimeError, match="schedule queue full"):
            for _ in range(runtime.SCHEDULER_DEPTH + 1):
                runtime.schedule(lambda _: None, None)
    finally:
        gate.set()
        assert runtime.ACTIVITY.settle(30), "the blocked scheduled functions did not finish"


def test_schedule_needs_a_callable():
    with pytest.raises(TypeError):
        runtime.schedule(5, None)


def test_sleep_ms_returns_after_a_scheduled_function_that_is_due(monkeypatch):
    # However late the scheduler thread gets the CPU, the wait holds until the function ran.
    monkeypatch.setattr(runtime, "SETTLE_LIMIT_S", 60.0)
    ran = []
    runtime.schedule(lambda _: (time.sleep(0.03), ran.append(1)), None)
    runtime.sleep_ms(0)
    assert ran == [1]


def test_settle_inside_a_handler_does_not_wait_for_itself(monkeypatch):
    # With a 60 s settle limit, a handler waiting for itself would not finish within 30 s.
    monkeypatch.setattr(runtime, "SETTLE_LIMIT_S", 60.0)
    done = threading.Event()

    def fn(_):
        runtime.idle()
        done.set()

    runtime.schedule(fn, None)
    assert done.wait(30)


def test_ilistdir_gives_name_type_inode_size_per_entry(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"12345")
    (tmp_path / "sub").mkdir()
    assert sorted(runtime.ilistdir(str(tmp_path))) == [("f.txt", 0x8000, 0, 5), ("sub", 0x4000, 0, 0)]


def test_ilistdir_of_a_missing_directory_is_an_os_error_at_the_call(tmp_path):
    with pytest.raises(OSError):
        runtime.ilistdir(str(tmp_path / "missing"))


def test_install_adds_ilistdir_to_os():
    import os
    runtime.install_os_extensions()
    assert os.ilistdir is runtime.ilistdir
