"""core.Signal: coroutines on any event loop woken by state changed on another thread."""
import asyncio
import threading

import pytest

from blebridge.aioble.core import Signal

from aioble_helpers import run


def test_signal_wakes_a_coroutine_when_another_thread_changes_state():
    signal, state = Signal(), []

    def change():
        state.append(1)
        signal.notify()

    async def main():
        threading.Timer(0.01, change).start()
        return await signal.until(lambda: state)
    assert run(main()) == [1]


def test_signal_returns_at_once_when_the_state_is_already_there():
    async def main():
        return await Signal().until(lambda: "ready")
    assert run(main()) == "ready"


def test_signal_wait_raises_timeout_error_when_nothing_changes():
    async def main():
        await Signal().until(lambda: False, 0.01)
    with pytest.raises(asyncio.TimeoutError):
        run(main())


def test_signal_check_raises_out_of_the_wait():
    signal, lost = Signal(), []

    def check():
        if lost:
            raise ConnectionError("board lost")

    def lose():
        lost.append(True)
        signal.notify()

    async def main():
        threading.Timer(0.01, lose).start()
        await signal.until(lambda: False, None, check)
    with pytest.raises(ConnectionError):
        run(main())


def test_signal_wakes_waiters_on_two_event_loops():
    signal, state, results = Signal(), [], []

    def waiter():
        results.append(asyncio.run(asyncio.wait_for(signal.until(lambda: state), 30)))

    threads = [threading.Thread(target=waiter) for _ in range(2)]
    for t in threads:
        t.start()
    state.append("go")
    signal.notify()
    for t in threads:
        t.join(30)
    assert results == [["go"], ["go"]]
