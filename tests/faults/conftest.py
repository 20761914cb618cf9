"""Fixtures for process-fault tests: simulated boards whose processes get killed or stopped.

Every test gets its own air socket (``air_socket``, autouse): airs and boards started for the
test name it on their command line, so the process table (/proc, see proc_table.py) tells which
processes are the test's. After each test, once its boards are closed, no bb_sim of that socket
may remain: the check waits (generously) for them to go, then fails the test, after killing
them so that no later test inherits them. The test's airs are stopped there too: an air lingers
on purpose (it exits after 30 s without boards), so stopping it is cleanup, not a failure.

Skipped when the sim firmware is not built (`make firmware`) or Bumble is missing.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = REPO / "host"
if str(HOST) not in sys.path:
    sys.path.insert(0, str(HOST))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import proc_table  # noqa: E402
from blebridge.sim import launcher  # noqa: E402

#: Seconds an air gets to exit after SIGTERM before SIGKILL (teardown).
AIR_STOP_TIMEOUT_S = 10.0


def _terminate(pids: list[int], timeout: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    alive = {p.pid for p in proc_table.processes()} & set(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = {p.pid for p in proc_table.processes()} & set(pids)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def air_socket() -> Iterator[str]:
    """This test's air socket; afterwards no board process of it may remain (see module doc)."""
    pytest.importorskip("bumble")
    try:
        launcher.firmware_path()
    except FileNotFoundError as exc:
        pytest.skip(f"sim firmware not built: {exc}")
    # Short path: a Unix socket path must fit in 108 bytes.
    directory = tempfile.mkdtemp(prefix="bbfault-")
    socket = os.path.join(directory, "air.sock")
    try:
        yield socket
    finally:
        try:
            left = proc_table.boards(socket)
            deadline = time.monotonic() + proc_table.PROCESS_DEADLINE_S
            while left and time.monotonic() < deadline:
                time.sleep(0.02)
                left = proc_table.boards(socket)
            _terminate([p.pid for p in left], launcher.BOARD_STOP_TIMEOUT_S)
            _terminate([p.pid for p in proc_table.airs(socket)], AIR_STOP_TIMEOUT_S)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        assert not left, f"board processes left behind: {[(p.pid, p.board_name()) for p in left]}"


@pytest.fixture
def spec_of(air_socket: str) -> Callable[[str], str]:
    """spec_of(NAME) -> "sim:NAME?air=<this test's socket>"."""
    return lambda name: f"sim:{name}?air={air_socket}"


@pytest.fixture
def open_sim(spec_of: Callable[[str], str]) -> Iterator[Callable[..., Any]]:
    """open_sim(NAME, **kw) -> an open Board on a board process this test owns; closed after."""
    from blebridge import open_board

    opened: list[Any] = []

    def open_(name: str, **kw: Any) -> Any:
        board = open_board(spec_of(name), **kw)
        opened.append(board)
        return board

    yield open_
    for board in opened:
        board.close()


def child_env(air_socket: str) -> dict[str, str]:
    """Environment of a child Python that uses blebridge from this checkout on this air."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HOST)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["BLEBRIDGE_AIR"] = air_socket
    env.pop("BLEBRIDGE_DEBUG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


#: Run as ``python -c THIS PYTHON ARGS...``: restore SIGINT's default action, then exec the rest.
_SIGINT_DEFAULT_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                        "os.execv(sys.argv[1], sys.argv[1:])")


class Child:
    """A child Python process (a script, `blebridge run`) with its stdout read line by line."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        # Its own process group, as a command started from a shell has: a test can send it a
        # terminal's Ctrl-C (SIGINT to the group) without hitting pytest.
        # A shell without job control starts background commands with SIGINT ignored, and the
        # ignore is inherited (`make test &` from a script, some CI runners): a child started
        # so would never see the Ctrl-C the tests send. It gets the default action back, as a
        # command typed at a terminal has, through an exec (no preexec_fn: pytest has threads).
        argv = [argv[0], "-c", _SIGINT_DEFAULT_EXEC, *argv]
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)

    def wait_line(self, text: str, timeout: float = proc_table.PROCESS_DEADLINE_S * 3) -> None:
        """Wait until the child prints a line containing ``text``."""
        import select

        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        buf = b""
        while text.encode() not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"child did not print {text!r} within {timeout:g} s; "
                                     f"stdout so far {buf!r}")
            if not select.select([fd], [], [], min(remaining, 0.5))[0]:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:                  # end of file: the child ended
                _, err = self.proc.communicate()
                raise AssertionError(f"child ended (status {self.proc.returncode}) without "
                                     f"printing {text!r}; stdout {buf!r}, stderr {err!r}")
            buf += chunk

    def finish(self, timeout: float = 120.0) -> tuple[int, str, str]:
        """(exit status, stdout rest, stderr) once the child has ended."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def child(air_socket: str, tmp_path: Path) -> Iterator[Callable[..., Child]]:
    """child(*argv) -> a Child running ``python argv...`` in tmp_path on this test's air."""
    started: list[Child] = []

    def start(*argv: str) -> Child:
        c = Child([sys.executable, *argv], child_env(air_socket), str(tmp_path))
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()
