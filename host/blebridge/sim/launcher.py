"""Start and find simulated boards (``sim:NAME``) and the air they share.

- :func:`ensure_air` starts ``python -m blebridge.sim.air`` (detached; it exits by itself after
  30 s without boards) unless something already listens on the socket.
- :func:`start_board` runs the firmware ``bb_sim --air SOCKET --name NAME`` and reads the
  ``PTY <path>`` line it prints. An *owned* board dies with its owner (``--die-with-parent``,
  :meth:`SimBoard.stop`); every board has its own session, so a terminal's Ctrl-C reaches the
  script and not its board. A *detached* board outlives the process that started it; it is
  recorded in ``<socket dir>/boards/NAME.json`` so that :func:`list_boards`,
  :func:`stop_board` and :func:`stop_all` work from any process.
- :func:`resolve` is what ``sim:NAME`` uses: a running detached board, else a new owned one.

Socket (docs/design.md): env ``BLEBRIDGE_AIR``, else ``$XDG_RUNTIME_DIR/blebridge/air.sock``,
else ``/tmp/blebridge-$UID/air.sock``. Tests pass their own socket for an isolated air.
Firmware (:func:`firmware_path`): env ``BLEBRIDGE_SIM_FIRMWARE``, else the binary installed with
the package (``blebridge/sim/bin/bb_sim``, built into the wheel by setup.py), else a checkout's
``<repo>/build/sim/bb_sim`` (``make firmware``), else ``bb_sim`` on PATH. Logs: ``<socket dir>/<socket stem>.log`` (air), ``<socket dir>/boards/NAME.log`` (boards).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

#: Seconds to wait for a new air to listen / a new board to print its PTY line.
AIR_START_TIMEOUT_S = 15.0
BOARD_START_TIMEOUT_S = 10.0
#: Seconds a board gets to exit after SIGTERM before SIGKILL.
BOARD_STOP_TIMEOUT_S = 3.0
#: Default idle time after which an air started here exits (no boards), seconds.
AIR_IDLE_EXIT_S = 30.0

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding `blebridge/`
_REPO_ROOT = Path(__file__).resolve().parents[3]  # a checkout's root (when it is one)
#: Where a wheel install keeps the firmware (setup.py's PACKAGED_FIRMWARE).
PACKAGED_FIRMWARE = Path(__file__).resolve().parent / "bin" / "bb_sim"


class SimLaunchError(RuntimeError):
    """A simulated board or the air could not be started; the message says why and where
    the log is."""


def default_air_socket() -> str:
    """The air socket used when none is given (see the module doc)."""
    env = os.environ.get("BLEBRIDGE_AIR")
    if env:
        return env
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return os.path.join(runtime, "blebridge", "air.sock")
    return f"/tmp/blebridge-{os.getuid()}/air.sock"


def _air_log(socket_path: str) -> Path:
    path = Path(socket_path)
    return path.with_name(path.stem + ".log")


def _registry_dir(socket_path: str) -> Path:
    return Path(socket_path).parent / "boards"


def _listening(socket_path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(socket_path)
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _locked(socket_path: str) -> Iterator[None]:
    # Serialises "is an air listening? else start one" between processes.
    lock_path = Path(socket_path).with_name(Path(socket_path).name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(_PACKAGE_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def ensure_air(socket: Optional[str] = None, idle_exit: float = AIR_IDLE_EXIT_S) -> str:
    """Path of a listening air socket; starts an air there first if nothing listens."""
    path = os.path.abspath(socket or default_air_socket())
    if _listening(path):
        return path
    with _locked(path):
        if _listening(path):
            return path
        log = _air_log(path)
        proc = subprocess.Popen(
            [sys.executable, "-m", "blebridge.sim.air", "--socket", path,
             "--idle-exit", str(idle_exit), "--log", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env=_child_env(), close_fds=True,
        )
        deadline = time.monotonic() + AIR_START_TIMEOUT_S
        while not _listening(path):
            if proc.poll() is not None:
                raise SimLaunchError(f"the air exited with status {proc.returncode} before "
                                     f"listening on {path}; see {log}")
            if time.monotonic() > deadline:
                proc.kill()
                raise SimLaunchError(f"the air did not listen on {path} within "
                                     f"{AIR_START_TIMEOUT_S:.0f} s; see {log}")
            time.sleep(0.05)
    return path


#: Seconds the air may take to answer a capture request.
CAPTURE_REQUEST_TIMEOUT_S = 10.0


def request_capture(name: str, path: str, air: Optional[str] = None) -> str:
    """Ask the air (started if needed) to write the HCI traffic of the next board NAME that joins
    it to ``path`` in btsnoop format, until that board leaves the air (blebridge.sim.air,
    "Captures"). Returns the file's absolute path; SimLaunchError when the
    air cannot write it."""
    from .port_link import MSG_REQ, MSG_RSP, FrameDecoder, decode_message, encode_message

    air_path = ensure_air(air)
    target = os.path.abspath(path)
    decoder = FrameDecoder()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CAPTURE_REQUEST_TIMEOUT_S)
        try:
            sock.connect(air_path)
            sock.sendall(encode_message([MSG_REQ, 1, "capture", name, target]))
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    raise SimLaunchError(f"the air at {air_path} closed the connection without "
                                         f"answering the capture request; see {_air_log(air_path)}")
                for payload in decoder.feed(chunk):
                    msg = decode_message(payload)
                    if msg[0] == MSG_RSP and len(msg) >= 4:
                        if msg[2] != 0:
                            why = msg[3] if isinstance(msg[3], str) else (
                                "the air running there is older and takes no capture requests; "
                                "stop its boards (it exits when idle) and retry")
                            raise SimLaunchError(f"cannot capture board {name}: {why}")
                        return target
        except OSError as exc:
            raise SimLaunchError(f"cannot ask the air at {air_path} for a capture: {exc}") from exc


def firmware_path() -> str:
    """The bb_sim binary to run. Raises FileNotFoundError saying how to get one."""
    env = os.environ.get("BLEBRIDGE_SIM_FIRMWARE")
    if env:
        if not os.access(env, os.X_OK):
            raise FileNotFoundError(f"BLEBRIDGE_SIM_FIRMWARE={env} is not an executable file")
        return env
    # The installed package's own binary comes first: it was built with this very package.
    # A checkout's package directory has none (setup.py puts it only into wheels), so a
    # developer's `make firmware` build is used there.
    candidates = [PACKAGED_FIRMWARE]
    in_checkout = (_REPO_ROOT / "firmware" / "ports" / "sim").is_dir()
    if in_checkout:
        candidates.append(_REPO_ROOT / "build" / "sim" / "bb_sim")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which("bb_sim")
    if on_path:
        return on_path
    if in_checkout:
        raise FileNotFoundError(
            f"the simulated board firmware bb_sim is not built (looked for {candidates[-1]} and "
            "bb_sim on PATH): run `make firmware` in the repository, or set BLEBRIDGE_SIM_FIRMWARE")
    raise FileNotFoundError(
        f"this blebridge installation has no simulated board firmware (looked for "
        f"{PACKAGED_FIRMWARE} and bb_sim on PATH): reinstall it from a platform wheel or the "
        "sdist (pip install --force-reinstall --no-binary blebridge 'blebridge[sim]' builds it "
        "with the local C compiler and make), or set BLEBRIDGE_SIM_FIRMWARE")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An ended process not yet reaped by its parent (a zombie) still takes signal 0.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except FileNotFoundError:         # reaped just now (or no /proc: not Linux)
        return not os.path.isdir("/proc/self")
    except OSError:
        return True


@dataclass
class SimBoard:
    """A running bb_sim process: its name, pseudo-terminal, pid and air socket."""

    name: str
    pty: str
    pid: int
    air: str
    detached: bool = False
    _proc: Optional[subprocess.Popen[bytes]] = field(default=None, repr=False, compare=False)
    #: Size of the board's log when this process started it: what follows is this run's.
    _log_offset: Optional[int] = field(default=None, repr=False, compare=False)

    @property
    def owned(self) -> bool:
        """True when this process started the board and stops it when done."""
        return self._proc is not None and not self.detached

    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return _pid_alive(self.pid)

    def stop(self, timeout: float = BOARD_STOP_TIMEOUT_S) -> None:
        """Terminate the board process (SIGTERM, then SIGKILL) and forget its record."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
                # A stopped board (SIGSTOP, a debugger) would keep SIGTERM pending until
                # SIGKILL; let it go on and exit now.
                os.kill(self.pid, signal.SIGCONT)
            deadline = time.monotonic() + timeout
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
            if self.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        if self.detached:
            record = _registry_dir(self.air) / f"{self.name}.json"
            with contextlib.suppress(FileNotFoundError):
                if json.loads(record.read_text()).get("pid") == self.pid:
                    record.unlink()

    def exit_reason(self, wait: float = 0.0) -> Optional[str]:
        """Why the board process ended, as a phrase for an error message ("the simulated board
        process was killed by SIGKILL", "the simulated board exited: the air closed the
        connection"), or None while it still runs after ``wait`` s."""
        status: Optional[int] = None
        if self._proc is not None:
            try:
                status = self._proc.wait(wait)
            except subprocess.TimeoutExpired:
                return None
        else:
            deadline = time.monotonic() + wait
            while _pid_alive(self.pid):
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.01)
        if status is not None and status < 0:
            try:
                how = signal.Signals(-status).name
            except ValueError:
                how = f"signal {-status}"
            return f"the simulated board process was killed by {how}"
        # bb_sim says why it stopped on stderr (the log), prefixed "bb_sim NAME: ".
        prefix = f"bb_sim {self.name}: "
        last = ""
        if self._log_offset is not None:
            with contextlib.suppress(OSError):
                with open(_registry_dir(self.air) / f"{self.name}.log", "rb") as log_file:
                    log_file.seek(self._log_offset)
                    lines = log_file.read().decode("utf-8", "replace").strip().splitlines()
                    last = lines[-1] if lines else ""
        if last.startswith(prefix):
            return f"the simulated board exited: {last[len(prefix):]}"
        if status is not None:
            return f"the simulated board process exited with status {status}"
        return "the simulated board process ended"

    def reset(self) -> None:
        """Simulated board reset (SIGUSR1): the firmware restarts and sends BOOT."""
        os.kill(self.pid, signal.SIGUSR1)


def _read_pty_line(proc: subprocess.Popen[bytes], name: str, log: Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + BOARD_START_TIMEOUT_S
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            raise SimLaunchError(f"board {name} printed no PTY line within "
                                 f"{BOARD_START_TIMEOUT_S:.0f} s; see {log}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 256)
        if not chunk:
            proc.wait(BOARD_STOP_TIMEOUT_S)
            detail = ""
            with contextlib.suppress(OSError):
                detail = log.read_text().strip().splitlines()[-1]
            if "Address already in use" in detail:
                # The air refuses a second board of the same name (one address per name).
                raise SimLaunchError(f"a sim board named {name} is already on this air (another "
                                     f"program owns it); pick another name or stop that program")
            raise SimLaunchError(f"board {name} exited with status {proc.returncode} before "
                                 f"its PTY was ready" + (f": {detail}" if detail else "")
                                 + f"; see {log}")
        buf += chunk
    line = buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if not line.startswith("PTY "):
        proc.kill()
        raise SimLaunchError(f"board {name} printed {line!r} instead of 'PTY <path>'")
    return line[4:]


def start_board(name: str, air: Optional[str] = None, detached: bool = False,
                capture: Optional[str] = None) -> SimBoard:
    """Start bb_sim for NAME on the air (started if needed) and return it once its pty exists;
    ``capture``: a file the air writes the board's HCI traffic to (:func:`request_capture`)."""
    if not name or "/" in name:
        raise ValueError(f"invalid simulated board name {name!r}")
    firmware = firmware_path()
    air_path = ensure_air(air)
    for running in list_boards(air_path):
        if running.name == name:
            raise SimLaunchError(f"sim board {name} is already running (pid {running.pid}, pty "
                                 f"{running.pty}): open it with --port sim:{name}, or stop it first")
    if capture is not None:
        request_capture(name, capture, air_path)
    registry = _registry_dir(air_path)
    registry.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = registry / f"{name}.log"
    args = [firmware, "--air", air_path, "--name", name]
    if not detached:
        args.append("--die-with-parent")
    with open(log, "ab") as log_file:
        log_offset = log_file.tell()
        # Its own session, owned or not: a terminal's Ctrl-C (SIGINT to the foreground process
        # group) interrupts the script, not its board, so the script's KeyboardInterrupt
        # handler can still use the board, as on hardware. An owned board still ends with its
        # owner (--die-with-parent) or stop().
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=log_file, start_new_session=True, close_fds=True)
    pty = _read_pty_line(proc, name, log)
    board = SimBoard(name=name, pty=pty, pid=proc.pid, air=air_path, detached=detached,
                     _proc=proc, _log_offset=log_offset)
    if detached:
        record = registry / f"{name}.json"
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"name": name, "pty": pty, "pid": proc.pid, "air": air_path}))
        tmp.replace(record)
    return board


def list_boards(air: Optional[str] = None) -> list[SimBoard]:
    """Detached boards running on the air at ``air`` (stale records are removed)."""
    air_path = os.path.abspath(air or default_air_socket())
    boards = []
    registry = _registry_dir(air_path)
    for record in sorted(registry.glob("*.json")) if registry.is_dir() else []:
        try:
            info = json.loads(record.read_text())
            board = SimBoard(name=info["name"], pty=info["pty"], pid=int(info["pid"]),
                             air=info["air"], detached=True)
        except (OSError, ValueError, KeyError):
            continue
        if board.alive() and os.path.exists(board.pty):
            boards.append(board)
        else:
            with contextlib.suppress(FileNotFoundError):
                record.unlink()
    return boards


def stop_board(name: str, air: Optional[str] = None) -> bool:
    """Stop the detached board NAME. Returns False when no such board runs."""
    for board in list_boards(air):
        if board.name == name:
            board.stop()
            return True
    return False


def stop_all(air: Optional[str] = None) -> int:
    """Stop every detached board on the air; returns how many were stopped."""
    boards = list_boards(air)
    for board in boards:
        board.stop()
    return len(boards)


def resolve(name: str, air: Optional[str] = None) -> SimBoard:
    """The running detached board NAME, else a new board NAME owned by this process."""
    for board in list_boards(air):
        if board.name == name:
            return board
    return start_board(name, air=air, detached=False)
