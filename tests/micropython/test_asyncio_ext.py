"""MicroPython's asyncio names (blebridge.micropython.asyncio_ext), in plain CPython asyncio and
under `blebridge run`."""
import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from blebridge.micropython.asyncio_ext import EventLoop, ThreadSafeFlag, handoff, sleep_ms, wait_for_ms

HOST = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "host"))
#: Seconds a wait that must end may take on a loaded machine.
WAIT_S = 30.0


def run_script(code, timeout=60):
    env = dict(os.environ, PYTHONPATH=HOST)
    return subprocess.run([sys.executable, "-m", "blebridge.script", "-c", code],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_thread_safe_flag_set_from_another_thread_wakes_the_waiter():
    flag = ThreadSafeFlag()

    async def main():
        loop_ready = asyncio.Event()

        async def waiter():
            loop_ready.set()
            await flag.wait()
            return "woken"

        task = asyncio.create_task(waiter())
        await loop_ready.wait()
        threading.Thread(target=flag.set).start()
        return await asyncio.wait_for(task, WAIT_S)

    assert asyncio.run(main()) == "woken"


def test_thread_safe_flag_set_before_wait_returns_at_once_and_is_cleared():
    flag = ThreadSafeFlag()
    flag.set()

    async def main():
        await asyncio.wait_for(flag.wait(), WAIT_S)
        return flag.is_set()

    assert asyncio.run(main()) is False


def test_thread_safe_flag_clear_drops_a_set():
    flag = ThreadSafeFlag()
    flag.set()
    flag.clear()

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(flag.wait(), 0.05)

    asyncio.run(main())


def test_thread_safe_flag_made_outside_a_loop_works_in_successive_runs():
    flag = ThreadSafeFlag()

    async def one_round():
        threading.Thread(target=flag.set).start()
        await asyncio.wait_for(flag.wait(), WAIT_S)
        return True

    assert asyncio.run(one_round()) and asyncio.run(one_round())


def test_thread_safe_flag_waiter_cancelled_with_its_loop_leaves_the_flag_usable():
    flag = ThreadSafeFlag()

    async def abandon():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(flag.wait(), 0.01)

    asyncio.run(abandon())
    flag.set()    # the abandoned loop is closed: nothing to wake, no error

    async def again():
        await asyncio.wait_for(flag.wait(), WAIT_S)
        return True

    assert asyncio.run(again())


def test_sleep_ms_sleeps_at_least_that_many_milliseconds():
    t0 = time.monotonic()
    asyncio.run(sleep_ms(30))
    assert time.monotonic() - t0 >= 0.03


def test_wait_for_ms_times_out_in_milliseconds():
    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await wait_for_ms(asyncio.sleep(WAIT_S), 10)

    asyncio.run(main())


def test_wait_for_ms_returns_the_result():
    async def value():
        return 7

    async def main():
        return await wait_for_ms(value(), WAIT_S * 1000), await wait_for_ms(value(), None)

    assert asyncio.run(main()) == (7, 7)


def test_blebridge_run_gives_asyncio_micropythons_names():
    r = run_script("import asyncio, uasyncio\n"
                   "print(all(hasattr(asyncio, n) for n in ('ThreadSafeFlag', 'sleep_ms', 'wait_for_ms')),"
                   " uasyncio is asyncio)")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "True True\n"


def test_create_task_before_a_loop_runs_starts_with_the_next_loop():
    r = run_script("import asyncio\n"
                   "async def early():\n    print('early ran')\n"
                   "t = asyncio.create_task(early())\n"
                   "async def main():\n    await asyncio.sleep_ms(0)\n    await t\n    print('main', t.done())\n"
                   "asyncio.run(main())\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "early ran\nmain True\n"


def test_create_task_before_a_loop_cancelled_never_runs():
    r = run_script("import asyncio\n"
                   "async def early():\n    print('early ran')\n"
                   "t = asyncio.create_task(early())\n"
                   "print(t.cancel(), t.cancelled())\n"
                   "asyncio.run(asyncio.sleep_ms(1))\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "True True\n"


def test_create_task_before_a_loop_needs_a_coroutine():
    r = run_script("import asyncio\nasyncio.create_task(print)\n")
    assert r.returncode == 1 and "TypeError" in r.stderr


def test_handoff_lets_the_woken_task_run_before_the_handlers_next_set():
    # Two IRQs, each setting the flag a task waits on: on a board the task runs between them.
    # Without the hand-off both sets land before the task runs, one is lost, and the task
    # waits for a second wake until WAIT_S.
    flag = ThreadSafeFlag()
    seen = []

    async def main():
        started = asyncio.Event()

        async def count():
            started.set()
            while len(seen) < 2:
                await flag.wait()
                seen.append("woken")

        task = asyncio.ensure_future(count())
        await started.wait()

        def irqs():
            for _ in range(2):
                with handoff(WAIT_S):
                    flag.set()

        threading.Thread(target=irqs).start()
        await asyncio.wait_for(task, WAIT_S)

    loop = EventLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen == ["woken", "woken"]
