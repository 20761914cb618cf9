"""Zerynth's ``timers``, served by blebridge: millisecond timers on the host's monotonic clock;
one_shot/interval functions run on their own thread, an exception in one printed with its
traceback."""
import sys as _sys
import threading as _threading
import time as _time
import traceback as _traceback

_T0 = _time.monotonic()


def now():
    """Milliseconds since the script started."""
    return int((_time.monotonic() - _T0) * 1000)


def _check_ms(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of ms, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0 ms, not {value}")


class timer:
    """A timer: counts ms from start()/reset(); one_shot/interval call a function."""

    def __init__(self):
        self.time = None
        self._timer = None
        self._lock = _threading.Lock()

    def _arm(self, delay, fn, arg, repeat):
        def fire():
            with self._lock:
                if self._timer is not t:
                    return
            try:
                fn(arg)
            except Exception:
                print(f"timers: the function {getattr(fn, '__name__', fn)} raised:", file=_sys.stderr)
                _traceback.print_exc(file=_sys.stderr)
            if repeat:
                with self._lock:
                    if self._timer is t:
                        self._arm(delay, fn, arg, repeat)
        t = _threading.Timer(delay / 1000, fire)
        t.daemon = True
        with self._lock:
            old, self._timer = self._timer, t
        if old is not None and old is not _threading.current_thread():
            old.cancel()
        t.start()

    def one_shot(self, delay, fn, arg=None):
        _check_ms(delay, "delay")
        self._arm(delay, fn, arg, False)

    def interval(self, period, fn, arg=None):
        _check_ms(period, "period")
        if period == 0:
            raise ValueError("period must be > 0 ms")
        self._arm(period, fn, arg, True)

    def clear(self):
        with self._lock:
            old, self._timer = self._timer, None
        if old is not None:
            old.cancel()

    def destroy(self):
        self.clear()

    def start(self):
        self.time = now()

    def _since(self):
        if self.time is None:
            raise RuntimeError("timer not started: call start() first")
        return now() - self.time

    def reset(self):
        elapsed = self._since()
        self.time = now()
        return elapsed

    def get(self):
        return self._since()
