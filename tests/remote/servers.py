"""Network servers in front of a simulated board's pseudo-terminal: what a rig host runs.

Each server is a child process listening on 127.0.0.1 at a port the OS picks (bound to port 0;
the port is then read from /proc, so parallel runs never collide and nothing is guessed):

- ``ser2net(pty, "rfc2217")``: ser2net (Debian ``ser2net``, 4.x), Telnet with RFC 2217,
  ``rfc2217://``;
- ``ser2net(pty, "raw")``: ser2net, raw TCP, ``socket://``;
- ``socat(pty)``: socat (Debian ``socat``), raw TCP, ``socket://``;
- ``pyserial_rfc2217(pty)``: pyserial's own RFC 2217 server (``serial.rfc2217.PortManager``,
  tests/remote/rfc2217_server.py), ``rfc2217://``.

``Server.kill()`` is the board unplugged: the process gets SIGKILL and its connections drop.
Linux only (/proc), as simulated boards are.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
#: Seconds a server may take to listen (a loaded machine starts processes slowly).
LISTEN_TIMEOUT_S = 20.0
#: Seconds a killed server may take to be reaped.
REAP_TIMEOUT_S = 10.0

KINDS = ("rfc2217-ser2net", "rfc2217-pyserial", "socket-ser2net", "socket-socat")


class ServerError(RuntimeError):
    """A server did not start; the message has its output."""


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        try:
            link = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue                       # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def listening_port(pid: int) -> Optional[int]:
    """The TCP port process ``pid`` listens on, or None while it listens on none."""
    inodes = _socket_inodes(pid)
    if not inodes:
        return None
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                next(f)                    # the header line
                for line in f:
                    cols = line.split()
                    # cols: sl local_address rem_address st ... inode (10th column); 0A = LISTEN
                    if cols[3] == "0A" and int(cols[9]) in inodes:
                        return int(cols[1].rsplit(":", 1)[1], 16)
        except OSError:
            continue
    return None


class Server:
    """A server child process; ``url`` is what blebridge opens."""

    def __init__(self, kind: str, args: list[str], scheme: str, workdir: str) -> None:
        self.kind = kind
        self._workdir = workdir
        self._log_path = os.path.join(workdir, "server.log")
        self._log = open(self._log_path, "wb")
        try:
            # Its own session: a test's or a terminal's signals are not its.
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         close_fds=True)
        except BaseException:
            self._log.close()
            raise
        self.port = self._wait_listening()
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def _wait_listening(self) -> int:
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while True:
            port = listening_port(self.proc.pid)
            if port is not None:
                return port
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"{self.kind} did not listen within {LISTEN_TIMEOUT_S:.0f} s "
                                  f"(status {self.proc.returncode}): {self.output()}")
            time.sleep(0.02)

    def output(self) -> str:
        try:
            return Path(self._log_path).read_text(errors="replace").strip()
        except OSError:
            return ""

    def kill(self) -> None:
        """The board unplugged: SIGKILL, no goodbye on the connection."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(REAP_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(REAP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def missing_tool(kind: str) -> Optional[str]:
    """Why ``kind`` cannot run here (its program is not installed), or None."""
    program = {"rfc2217-ser2net": "ser2net", "socket-ser2net": "ser2net",
               "socket-socat": "socat"}.get(kind)
    if program and shutil.which(program) is None and not os.path.exists(f"/usr/sbin/{program}"):
        return f"{program} is not installed (Debian package {program}; .ci/run installs it)"
    return None


def _program(name: str) -> str:
    # ser2net lives in /usr/sbin, which a non-root PATH may lack.
    return shutil.which(name) or f"/usr/sbin/{name}"


def ser2net(pty: str, mode: str, options: Optional[dict[str, str]] = None) -> Server:
    """ser2net in front of ``pty``: ``mode`` "rfc2217" (Telnet + RFC 2217) or "raw" (TCP).
    ``options`` are connection options (man ser2net.yaml) replacing or adding to the ones
    below, e.g. {"chardelay": "true"} or {"dev-to-net-bufsize": "65536"} for measuring them."""
    workdir = tempfile.mkdtemp(prefix="bb-ser2net-")
    accepter = "telnet(rfc2217),tcp,127.0.0.1,0" if mode == "rfc2217" else "tcp,127.0.0.1,0"
    # What a pseudo-terminal needs of ser2net (4.3.11, Debian 12): of the connector options,
    # nothing (measured: the board answers with or without ``local`` and UUCP locking); of the
    # client, that it does not wait for the acknowledgement of RFC 2217 SET_CONTROL (DTR/RTS):
    # the pty refuses the modem-line ioctl (ENOTTY, logged as "Unhandled OS error in
    # gensio_unix_termios_control") and ser2net sends none; pyserial's client then fails the
    # open, blebridge's does not wait (blebridge/transport/rfc2217.py). Kept anyway:
    # - ``local`` (CLOCAL): ignore carrier detect, which a pty (and a USB CDC port) lacks;
    # - ``nouucplock=true``: no UUCP lock file (/var/lock/LCK..pts_N), which is for serial
    #   lines shared with getty and needs /var/lock writable;
    # - 921600n81: only reaches the pty's termios, which ignores the speed.
    # ``chardelay: false``: forward what the board sent at once. By default ser2net waits up
    #   to 2 characters' time, at least 1000 µs, before sending: measured, echo round trips of
    #   3.3 ms instead of about 0.1 ms (README "Remote boards").
    opts = {"chardelay": "false", **(options or {})}
    config = (
        "connection: &board\n"
        f"  accepter: {accepter}\n"
        f"  connector: serialdev(nouucplock=true),{pty},921600n81,local\n"
        "  options:\n"
        + "".join(f"    {key}: {value}\n" for key, value in opts.items())
    )
    path = os.path.join(workdir, "ser2net.yaml")
    Path(path).write_text(config)
    return Server(f"ser2net {mode}", [_program("ser2net"), "-n", "-d", "-c", path,
                                     "-P", os.path.join(workdir, "ser2net.pid")],
                  "rfc2217" if mode == "rfc2217" else "socket", workdir)


def socat(pty: str) -> Server:
    """socat: one TCP connection to ``pty``, raw (``rawer``: no echo, no line discipline)."""
    workdir = tempfile.mkdtemp(prefix="bb-socat-")
    return Server("socat", [_program("socat"), "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr",
                            f"FILE:{pty},rawer"], "socket", workdir)


def pyserial_rfc2217(pty: str) -> Server:
    """pyserial's RFC 2217 server (PortManager) in a child process (rfc2217_server.py)."""
    workdir = tempfile.mkdtemp(prefix="bb-pyrfc-")
    return Server("pyserial rfc2217", [sys.executable, str(HERE / "rfc2217_server.py"), pty],
                  "rfc2217", workdir)


def start(kind: str, pty: str, ser2net_options: Optional[dict[str, str]] = None) -> Server:
    """The server of ``kind`` (one of KINDS) in front of ``pty``."""
    if kind == "rfc2217-ser2net":
        return ser2net(pty, "rfc2217", ser2net_options)
    if kind == "socket-ser2net":
        return ser2net(pty, "raw", ser2net_options)
    if kind == "socket-socat":
        return socat(pty)
    if kind == "rfc2217-pyserial":
        return pyserial_rfc2217(pty)
    raise ValueError(f"unknown server kind {kind!r}; one of {KINDS}")
