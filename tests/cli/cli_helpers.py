"""Helpers of the CLI tests: the `blebridge` command run as a user runs it, on the suite's air."""
from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

HOST = Path(__file__).resolve().parents[2] / "host"
#: Seconds a CLI command may take before the test fails (generous: the machine is loaded).
COMMAND_TIMEOUT_S = 60.0


def cli_env(**extra: str) -> dict[str, str]:
    """Environment of a `blebridge` child: this checkout's package, the suite's air, no debug."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HOST)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("BLEBRIDGE_DEBUG", None)
    env.pop("BLEBRIDGE_PORT", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def blebridge(*args: str, input: str | None = None, env: dict[str, str] | None = None,
              timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run `blebridge ARGS...` to its end; its output as text."""
    return subprocess.run([sys.executable, "-m", "blebridge", *args], input=input,
                          capture_output=True, text=True, env=env or cli_env(), timeout=timeout)


def assert_one_line_and_hint(r: subprocess.CompletedProcess, *fragments: str) -> None:
    """Status 2, and stderr is the CLI's error line and its hint line, nothing else."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("blebridge: error: ") and lines[1].startswith("hint: "), r.stderr
    for fragment in fragments:
        assert fragment in r.stderr, r.stderr


#: Run as ``python -c THIS PYTHON ARGS...``: SIGINT's default action back (a suite started in the
#: background of a shell without job control has it ignored, and children inherit that), then exec.
_SIGINT_DEFAULT_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                        "os.execv(sys.argv[1], sys.argv[1:])")


class Command:
    """`blebridge ARGS...` running in its own process group, as started from a shell; its
    stdout read as it comes (from a pipe, or from a pseudo-terminal with ``tty=True``)."""

    def __init__(self, *args: str, tty: bool = False, env: dict[str, str] | None = None,
                 stdin: Any = subprocess.DEVNULL, merge_stderr: bool = False) -> None:
        argv = [sys.executable, "-c", _SIGINT_DEFAULT_EXEC, sys.executable, "-m", "blebridge", *args]
        self.master: Optional[int] = None
        if tty:
            import pty
            self.master, slave = pty.openpty()
            out: Any = slave
        else:
            out = subprocess.PIPE
        if tty and stdin is subprocess.DEVNULL:
            stdin = out                   # a terminal session: typing goes to the same pty
        self.proc = subprocess.Popen(argv, env=env or cli_env(), stdin=stdin, stdout=out,
                                     stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                                     start_new_session=True)
        if tty:
            os.close(slave)
        self.fd = self.master if tty else self.proc.stdout.fileno()  # type: ignore[union-attr]
        self.out = b""

    def _read(self, timeout: float) -> bool:
        if not select.select([self.fd], [], [], timeout)[0]:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:                   # a pty whose other end closed
            chunk = b""
        self.out += chunk
        return bool(chunk)

    def wait_for(self, predicate: Callable[[bytes], bool], what: str,
                 timeout: float = COMMAND_TIMEOUT_S) -> bytes:
        """Read stdout until ``predicate(all output so far)``; fails naming ``what``."""
        deadline = time.monotonic() + timeout
        while not predicate(self.out):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.5)):
                if predicate(self.out):
                    break
                raise AssertionError(f"no {what} within {timeout:g} s (status {self.proc.poll()}); "
                                     f"stdout {self.out[-2000:]!r}")
        return self.out

    def send(self, text: str) -> None:
        """Type ``text`` at the terminal (tty=True)."""
        assert self.master is not None
        os.write(self.master, text.encode())

    def interrupt(self) -> None:
        """A terminal's Ctrl-C: SIGINT to the process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def finish(self, timeout: float = COMMAND_TIMEOUT_S / 2) -> tuple[int, str, str]:
        """Wait for the end; (status, all stdout, stderr) as text."""
        deadline = time.monotonic() + timeout
        while self._read(max(min(deadline - time.monotonic(), 0.5), 0.01)) and time.monotonic() < deadline:
            pass
        err = self.proc.stderr.read() if self.proc.stderr is not None else b""
        status = self.proc.wait(max(deadline - time.monotonic(), 1))
        if self.master is not None:
            os.close(self.master)
        elif self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return status, self.out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


_names = itertools.count()


def board_name(role: str) -> str:
    """A simulated board name no other test of this run uses (the suite's air is shared)."""
    return f"cli{role}{os.getpid()}n{next(_names)}"


#: What the advertiser fixture advertises: its name, a 16-bit service, manufacturer data.
ADV_NAME = "cli-sensor"
ADV_SERVICE = 0x181A
ADV_COMPANY, ADV_MANUFACTURER = 0xFFFF, bytes.fromhex("c0ffee")
