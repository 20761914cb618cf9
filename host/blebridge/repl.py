"""``blebridge repl``: an interactive Python prompt with a board open, as mpremote's repl is for a
board, but the Python is the PC's.

    blebridge repl [--port PORT] [--api micropython|circuitpython|zerynth]

The prompt has the board API's modules (the same shims and runtime as ``blebridge run --api``)
and runs the API's prelude first; for micropython: ``bluetooth``, ``time``, ``const`` imported and
``ble = bluetooth.BLE()`` open on PORT (default $BLEBRIDGE_PORT, else sim:blebridge). An API
with no runtime yet ends with the same line as ``blebridge run``. On a terminal the prompt has
line editing, tab completion of names and attributes (rlcompleter) and a history kept between
sessions (``--history FILE``, default $XDG_STATE_HOME/blebridge/repl_history). With stdin piped it
reads the lines as the prompt would (what the tests do). Language: the API's dialect, as under
``blebridge run`` (micropython: ``b"a" + "b"`` and bytearray item rules). A board lost under
the prompt is told in one line; the prompt stays (calls then fail with the API's error).
Ctrl-D or ``exit()`` leaves, closing the board.
"""
from __future__ import annotations

import argparse
import code
import os
import sys
from pathlib import Path
from typing import Any, Optional

#: Lines of history kept in the history file.
HISTORY_LINES = 1000
HISTORY_ENV = "BLEBRIDGE_HISTORY"
#: The board when neither --port nor $BLEBRIDGE_PORT names one (the API layers' default too).
DEFAULT_PORT = "sim:blebridge"


def default_history_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "blebridge" / "repl_history"


def _line_editing(namespace: dict[str, Any], history: Optional[Path]) -> None:
    """Tab completion over ``namespace`` and the history file, when readline exists (it does
    not on Windows without pyreadline; the prompt works without)."""
    try:
        import readline
        import rlcompleter
    except ImportError:
        return
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    if "libedit" in (readline.__doc__ or ""):      # macOS's Python
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    if history is None:
        return
    try:
        history.parent.mkdir(parents=True, exist_ok=True)
        if history.exists():
            readline.read_history_file(str(history))
    except OSError as exc:
        print(f"blebridge: warning: history file {history}: {exc.strerror}", file=sys.stderr)
        return
    readline.set_history_length(HISTORY_LINES)

    import atexit

    def save() -> None:
        try:
            readline.write_history_file(str(history))
        except OSError:
            pass
    atexit.register(save)


class _Console(code.InteractiveConsole):
    """Python's interactive console, compiling each complete statement in the API's dialect."""

    def __init__(self, namespace: dict[str, Any], dialect: Optional[Any]) -> None:
        super().__init__(namespace, filename="<stdin>")
        self.dialect = dialect

    def runsource(self, source: str, filename: str = "<input>", symbol: str = "single") -> bool:
        try:
            compiled = self.compile(source, filename, symbol)   # None: the statement goes on
            if compiled is not None and self.dialect is not None:
                compiled = self.dialect(source, filename, symbol)
        except (OverflowError, SyntaxError, ValueError):
            self.showsyntaxerror(filename)
            return False
        if compiled is None:
            return True
        self.runcode(compiled)
        return False


def _on_board_lost(exc: BaseException) -> None:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"\nblebridge: the board is gone: {msg}", file=sys.stderr, flush=True)


def cmd_repl(args: argparse.Namespace) -> int:
    from .cli import EXIT_ERROR, _print_error
    from .errors import BlebridgeError
    from .script.apis import DEFAULT_API, ApiError, api_named, load_runtime

    api = api_named(args.api or DEFAULT_API)
    try:
        runtime = load_runtime(api)
    except ApiError as exc:
        print(f"blebridge: error: {exc}", file=sys.stderr)    # as `blebridge run` says it
        return EXIT_ERROR
    port = args.port or os.environ.get("BLEBRIDGE_PORT") or DEFAULT_PORT
    os.environ["BLEBRIDGE_PORT"] = port           # the API's default board is this one
    sys.path[:0] = [runtime.SHIMS_DIR]
    runtime.install(_on_board_lost)
    namespace: dict[str, Any] = {"__name__": "__console__", "__doc__": None}
    prelude = getattr(runtime, "REPL_PRELUDE", "")
    try:
        prelude_code, helpers = runtime.compile_script(prelude, "<blebridge repl prelude>")
        namespace.update(helpers)
        exec(prelude_code, namespace)
    except BlebridgeError as exc:
        _print_error(exc, port)
        runtime.close_all()
        return EXIT_ERROR
    tty = sys.stdin.isatty()
    if tty:
        history = None if args.history == "" else Path(args.history or os.environ.get(HISTORY_ENV)
                                                        or default_history_file())
        _line_editing(namespace, history)
    ready = "; ".join(line for line in prelude.splitlines() if line.strip())
    banner = (f"blebridge repl: {api.title} on {port} (Python {sys.version.split()[0]})\n"
              + (f"ready: {ready}\n" if ready else "")
              + "Ctrl-D or exit() leaves; the board is closed then.")
    console = _Console(namespace, getattr(runtime, "compile_interactive", None))
    try:
        console.interact(banner=banner, exitmsg="")
    except SystemExit as exc:                     # exit() at the prompt
        status = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        return int(status)
    finally:
        runtime.close_all()
    return 0


_HELP = "Python prompt with a board open and its API imported (history, tab completion)"
_DESCRIPTION = ("Interactive Python prompt with a board open and the board API imported "
                "(micropython: ble = bluetooth.BLE() ready), with line editing, history and tab "
                "completion on a terminal; reads piped lines too. Ctrl-D leaves.")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``repl`` to the blebridge CLI (cli.py calls this)."""
    from .script.apis import API_NAMES, DEFAULT_API
    p = subparsers.add_parser("repl", help=_HELP, description=_DESCRIPTION)
    p.add_argument("--port", "-p", metavar="PORT", default=None,
                   help="board to open (default: $BLEBRIDGE_PORT or sim:blebridge)")
    p.add_argument("--api", choices=API_NAMES, default=None,
                   help=f"board API to import (default {DEFAULT_API})")
    p.add_argument("--history", metavar="FILE", default=None,
                   help=f"history file (default: ${HISTORY_ENV}, else "
                        "$XDG_STATE_HOME/blebridge/repl_history); '' keeps no history")
    p.set_defaults(func=cmd_repl)
    return p
