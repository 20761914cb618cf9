"""``blebridge run``: run an unmodified board script on the PC against a board.

    blebridge run [--port PORT] [--api API] script.py [args...]
    blebridge run [--port PORT] [--api API] -c CODE [args...]
    blebridge run [--port PORT] [--api API] - [args...]     (script from stdin)
    python -m blebridge.script ...                         (the same, without the CLI)

This part is the same for every board API; each API's runtime (script/apis.py) brings its
shims directory, its dialect and its set-up. API is micropython, circuitpython or zerynth;
without --api it is told from the script's imports (apis.detect_api), micropython when none
tells. Under micropython the script sees what it sees on a board: ``import bluetooth`` (BLE()
is the board at PORT), ``from micropython import const``, ``micropython.schedule``,
``time.sleep_ms/sleep_us/ticks_ms/ticks_us/ticks_diff/ticks_add``, ``machine.idle``, and the
``u*`` module aliases. sys.path is the script's directory ('' for -c and stdin, as python
does), the PYTHONPATH entries, the API's shims directory, then Python's own: the user's modules
win over the shims (``PYTHONPATH=DIR`` runs DIR's ``aioble``). Output is unbuffered. When the
script ends (or calls sys.exit) every board it opened is closed and the process exits with the script's
status: 0, 1 after an uncaught exception (traceback on stderr), or the SystemExit code. A board that fails under the script
(link lost, reset mid-call, no answer in time) ends the run with status 2 and one line on
stderr, also while the script only waits (docs/design.md, "Board process faults"). An API
that cannot be told (imports of two APIs) or has no runtime yet ends the run with status 2 and
one line on stderr, before anything runs.

PORT defaults to env BLEBRIDGE_PORT, else ``sim:blebridge`` (a simulated board). A port named
(--port or BLEBRIDGE_PORT) is checked before the script runs: opened, handshaken and closed, so a
port that cannot be opened, or a board that does not answer, ends the run with status 2, one line
and a hint (as ``blebridge info`` gives them) even when the script never touches the radio; the
same errors raised when the script opens the board are told the same way. A script that does not
compile gets Python's SyntaxError message with no frames, and status 1.
"""
from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
import traceback
import types
from typing import Any, Optional, Sequence

from ..errors import BoardLost, CallTimeout, PortOpenError, VersionMismatch
from .apis import APIS, API_NAMES, DEFAULT_API, ApiError, api_named, detect_api, load_runtime

_DESCRIPTION = "run a board script (MicroPython, CircuitPython, Zerynth) on this PC against a board"
_EPILOG = ("PORT: sim:NAME (simulated board), a device path (/dev/ttyACM0), rfc2217://host:port, "
           "socket://host:port, hwgrep://REGEX, id:SERIAL, auto; default: $BLEBRIDGE_PORT or sim:blebridge. "
           + "API, when --api is not given, from the script's imports: "
           + "; ".join(f"{api.name} if it imports {', '.join(sorted(api.modules | api.weak_modules))}"
                       for api in APIS)
           + f" (the micropython module counts only when no other API's module is imported); {DEFAULT_API} "
           + "if none of these. Available in this version: "
           + ", ".join(api.name for api in APIS if api.runtime is not None) + ".")


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--port", "-p", metavar="PORT", default=None,
                        help="board to run against (default: $BLEBRIDGE_PORT or sim:blebridge)")
    parser.add_argument("--api", choices=API_NAMES, default=None,
                        help="board API the script is written for (default: told from its imports, "
                             f"else {DEFAULT_API}; see below)")
    parser.add_argument("-c", dest="code", metavar="CODE", default=None,
                        help="program passed in as a string")
    parser.add_argument("script", nargs="?", default=None,
                        help="script file, or - to read it from stdin")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script (sys.argv[1:])")
    parser.set_defaults(func=_run_from_args)
    return parser


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``run`` to the blebridge CLI (cli.py calls this)."""
    parser = subparsers.add_parser("run", help=_DESCRIPTION, description=_DESCRIPTION, epilog=_EPILOG)
    return _configure(parser)


def _load(ns: argparse.Namespace) -> tuple[str, str, list[str], str]:
    """(source, filename, argv, sys.path[0]) for the script named by the arguments."""
    if ns.code is not None:
        argv = ["-c"] + ([ns.script] if ns.script is not None else []) + list(ns.args)
        return ns.code, "<string>", argv, ""
    if ns.script is None:
        raise SystemExit("blebridge run: give a script file, -c CODE, or - for stdin")
    if ns.script == "-":
        return sys.stdin.read(), "<stdin>", ["-"] + list(ns.args), ""
    path = ns.script
    try:
        with open(path, "r", encoding="utf-8") as f:
            source = f.read()
    except OSError as exc:
        raise SystemExit(f"blebridge run: can't open file {path!r}: {exc.strerror}") from None
    return source, path, [path] + list(ns.args), os.path.dirname(os.path.abspath(path))


class _LineWriter:
    """A text stream whose lines from different threads never mix.

    IRQ handlers print from other threads than the script's; ``print`` writes its pieces
    separately, so two threads' lines could interleave mid-line. Each thread's text is kept
    until its newline (or flush) and then written whole, and flushed at once (unbuffered
    output, as a board's REPL gives it).
    """

    def __init__(self, stream: Any, lock: threading.Lock) -> None:
        self._stream = stream
        self._lock = lock
        self._tls = threading.local()

    def write(self, text: str) -> int:
        pending = getattr(self._tls, "pending", "") + text
        head, newline, tail = pending.rpartition("\n")
        if newline:
            with self._lock:
                self._stream.write(head + newline)
                self._stream.flush()
        self._tls.pending = tail
        return len(text)

    def flush(self) -> None:
        pending = getattr(self._tls, "pending", "")
        self._tls.pending = ""
        with self._lock:
            if pending:
                self._stream.write(pending)
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _prepare_process(port: Optional[str], path0: str, shims_dir: str) -> None:
    if port:
        os.environ["BLEBRIDGE_PORT"] = port
    # The script's prints must reach a pipe as they happen (mpremote/run-multitests read lines).
    lock = threading.Lock()
    if not isinstance(sys.stdout, _LineWriter):
        sys.stdout = _LineWriter(sys.stdout, lock)
    if not isinstance(sys.stderr, _LineWriter):
        sys.stderr = _LineWriter(sys.stderr, lock)
    sys.path[:] = script_path(sys.path, path0, shims_dir, os.environ.get("PYTHONPATH", ""))


def script_path(path: Sequence[str], path0: str, shims_dir: str, pythonpath: str) -> list[str]:
    """The script's sys.path: its directory (``path0``), then the PYTHONPATH entries, then the
    API's shims, then Python's own directories (``path`` without the runner's entries).

    The user's modules (the script's directory, PYTHONPATH) win over the shims, as a board's
    filesystem wins over its extensible built-in modules: ``PYTHONPATH=DIR blebridge run``
    imports the ``aioble`` of DIR, not blebridge's.
    """
    runner_dir = os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else None
    user: list[str] = []
    for entry in pythonpath.split(os.pathsep):
        if entry and os.path.abspath(entry) not in user:
            user.append(os.path.abspath(entry))
    rest = [p for p in path if p not in ("", shims_dir) and p != runner_dir and p != os.getcwd()
            and os.path.abspath(p) not in user]
    return [path0] + [p for p in user if p != path0] + [shims_dir] + rest


#: Taken by whichever ends the run first: the script's thread when the script ends, or the
#: board-lost handler (a board's event thread) when the board goes away under a running script.
_ending = threading.Lock()


def _board_failure(exc: BaseException, filename: str) -> str:
    """The one line telling that the board failed under the script (lost, reset, no answer),
    with the script line that was waiting on it: not the script's fault, so no traceback."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # BoardLost's advice to API users; a run has nothing to reopen.
    msg = msg.replace("; call reopen() after reconnecting", "")
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" ({os.path.basename(filename)}, line {line})" if line is not None else ""
    return f"blebridge: error: {msg}{where}"


def _end_on_board_lost(exc: BaseException) -> None:
    """Lost handler of `blebridge run`: a board's link is gone (its process killed, the air
    gone, unplugged), so the run ends now with one line, even while the script sleeps or
    waits for an IRQ that will never come. Runs on the board's event thread."""
    if not _ending.acquire(blocking=False):
        return                        # the script is ending already and reports for itself
    print(_board_failure(exc, ""), file=sys.stderr)
    _finish(_runtime)
    from ..cli import EXIT_ERROR
    _exit_now(EXIT_ERROR)


def _print_script_exception(exc: BaseException, filename: str) -> None:
    tb = exc.__traceback__
    # Drop the runner's own frames: the traceback starts in the script, as on a board.
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)


#: The runtime module of the running script's API (for the board-lost handler).
_runtime: Any = None


def run_source(source: str, filename: str, argv: Sequence[str], port: Optional[str] = None,
               path0: str = "", api: Optional[str] = None) -> int:
    """Run ``source`` as __main__ with the environment of ``api`` (None: told from its
    imports); returns the exit status. This process becomes the run: a lost board ends it."""
    global _runtime
    try:
        chosen, why = (api_named(api), None) if api is not None else detect_api(source, filename)
        runtime = load_runtime(chosen, why, filename)
    except ApiError as exc:
        print(f"blebridge: error: {exc}", file=sys.stderr)
        from ..cli import EXIT_ERROR
        return EXIT_ERROR
    explicit = port or os.environ.get("BLEBRIDGE_PORT")
    if explicit:
        status = check_port(explicit)
        if status:
            return status
    _runtime = runtime
    _prepare_process(port, path0, runtime.SHIMS_DIR)
    runtime.install(_end_on_board_lost)
    sys.argv = list(argv)
    main = types.ModuleType("__main__")
    main.__dict__["__file__"] = filename if not filename.startswith("<") else None
    if main.__dict__["__file__"] is None:
        del main.__dict__["__file__"]
    main.__dict__["__builtins__"] = __builtins__
    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    outcome: Optional[BaseException] = None
    try:
        code, helpers = runtime.compile_script(source, filename)
    except SyntaxError as exc:
        # As python reports a script that does not compile: the error alone, no frames (the
        # frames would be the runtime's compiler, not the script).
        traceback.print_exception(type(exc), exc, None, file=sys.stderr)
        _finish(runtime)
        return 1
    try:
        main.__dict__.update(helpers)
        exec(code, main.__dict__)
    except BaseException as exc:
        outcome = exc
    try:
        with _ending:                     # see _end_on_board_lost
            status = _report(outcome, filename, port)
            _finish(runtime)
    finally:
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
    return status


def _report(exc: Optional[BaseException], filename: str, port: Optional[str]) -> int:
    """Exit status of a script that ended with ``exc`` (None: it ran to its end); prints why."""
    from ..cli import EXIT_ERROR, _print_error
    if exc is None:
        return 0
    if isinstance(exc, SystemExit):
        return _exit_status(exc.code)
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, (PortOpenError, VersionMismatch)) or _opening(exc):
        # The board could not be opened (no such port, busy, permission, old firmware): a
        # fact about the set-up, not the script, so the CLI's one-line error and hint.
        _print_error(exc, port or os.environ.get("BLEBRIDGE_PORT") or getattr(exc, "port", None))
        return EXIT_ERROR
    if isinstance(exc, (BoardLost, CallTimeout)):
        print(_board_failure(exc, filename), file=sys.stderr)
        return EXIT_ERROR
    _print_script_exception(exc, filename)
    return 1


def _opening(exc: BaseException) -> bool:
    """True for an error of opening a board (nothing answers the handshake): like a port that
    cannot be opened, a fact about the set-up, told with the CLI's line and hint."""
    return isinstance(exc, CallTimeout) and exc.method == "handshake"


def check_port(port: str) -> int:
    """Open the board at ``port`` (handshake and reset included) before the script runs: a
    port that cannot be opened ends the run with the CLI's one-line error and hint (status 2)
    even when the script never touches the radio. 0 when the board answers.

    The board stays open, registered as the session of ``port``: the script's API layer finds
    it there, so the port is opened once (a server that takes one connection, or a board that
    resets when its port opens, sees one open). ``_finish`` closes it."""
    from ..ble import session as ble_session
    from ..cli import EXIT_ERROR, _print_error
    from ..errors import BlebridgeError
    try:
        ble_session.open_session(port)
    except BlebridgeError as exc:
        _print_error(exc, port)
        return EXIT_ERROR
    return 0


def _exit_status(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _finish(runtime: Any) -> None:
    try:
        runtime.close_all()
        # The boards opened here and not closed by the API (check_port's, when the script
        # never used the radio).
        from ..ble import session as ble_session
        for session in ble_session.sessions():
            if session.owned:
                session.close()
    except Exception as exc:   # closing must not hide the script's own status
        print(f"blebridge run: closing the board failed: {exc}", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _run_from_args(ns: argparse.Namespace) -> int:
    source, filename, argv, path0 = _load(ns)
    return run_source(source, filename, argv, ns.port, path0, ns.api)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m blebridge.script``; returns the exit status."""
    parser = _configure(argparse.ArgumentParser(prog="blebridge run", description=_DESCRIPTION,
                                                epilog=_EPILOG))
    ns = parser.parse_args(argv)
    return ns.func(ns)


def _exit_now(status: int) -> None:
    """Exit without waiting for threads a script may have left running (as a board reboot)."""
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)

