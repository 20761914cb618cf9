"""The process table, read from /proc: which simulated boards and airs are running.

A simulated board is ``bb_sim --air SOCKET --name NAME``; an air is ``python -m
blebridge.sim.air --socket SOCKET``. Both name their air socket on the command line, and every
test here has its own socket, so "processes of this test" are those naming its socket.
Zombies (exited, not yet reaped) have no command line and do not count as running.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Optional

#: Seconds a process gets to appear or disappear before a test fails. Generous: the machine
#: is loaded; the usual figure is milliseconds.
PROCESS_DEADLINE_S = 20.0


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    argv: tuple[str, ...]

    @property
    def is_board(self) -> bool:
        return bool(self.argv) and os.path.basename(self.argv[0]) == "bb_sim"

    @property
    def is_air(self) -> bool:
        return "blebridge.sim.air" in self.argv

    def names_socket(self, socket: str) -> bool:
        return socket in self.argv

    def board_name(self) -> Optional[str]:
        if self.is_board and "--name" in self.argv:
            i = self.argv.index("--name")
            if i + 1 < len(self.argv):
                return self.argv[i + 1]
        return None


def processes() -> list[Proc]:
    """Every live process (not a zombie) whose command line can be read."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:               # ended while we looked
            continue
        # stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) < 2 or fields[0] == "Z" or not cmdline:
            continue
        argv = tuple(a.decode("utf-8", "replace") for a in cmdline.rstrip(b"\0").split(b"\0"))
        out.append(Proc(int(entry), int(fields[1]), fields[0], argv))
    return out


def sim_processes(socket: str) -> list[Proc]:
    """Boards and airs running on the air socket ``socket``."""
    return [p for p in processes() if (p.is_board or p.is_air) and p.names_socket(socket)]


def boards(socket: str, name: Optional[str] = None) -> list[Proc]:
    """bb_sim processes on ``socket`` (named ``name``, if given)."""
    return [p for p in sim_processes(socket)
            if p.is_board and (name is None or p.board_name() == name)]


def airs(socket: str) -> list[Proc]:
    return [p for p in sim_processes(socket) if p.is_air]


def wait_for(pred: Callable[[], object], what: str, timeout: float = PROCESS_DEADLINE_S) -> object:
    """Poll ``pred`` until it returns something true; AssertionError naming ``what`` after
    ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not so after {timeout:g} s")
        time.sleep(0.02)


def one_board(socket: str, name: str) -> Proc:
    """The single bb_sim NAME on ``socket``, waiting for it to appear."""
    found = wait_for(lambda: boards(socket, name), f"board {name} is running")
    assert isinstance(found, list) and len(found) == 1, found
    return found[0]


def one_air(socket: str) -> Proc:
    found = wait_for(lambda: airs(socket), f"an air listens on {socket}")
    assert isinstance(found, list) and len(found) == 1, found
    return found[0]
