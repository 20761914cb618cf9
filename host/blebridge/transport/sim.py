"""``sim:NAME[?air=SOCKET][&stack=bumble|nimble][&faults=KIND[.DIR]:RATE[:MS],...][&seed=N]``: a
simulated board (firmware built natively, Bumble air).

``stack`` is the board's BLE host: the air's Bumble host (``bumble``, the default unless env
``BLEBRIDGE_SIM_STACK`` says otherwise) or the real NimBLE host running the nimble port
(``nimble``, ``make nimble-sim NIMBLE=...``; see blebridge.sim.launcher).

blebridge.sim.launcher.resolve(NAME, air=SOCKET) finds the board process NAME or starts one
(and the air if none listens); its pseudo-terminal is then opened exactly like a USB port.
The returned transport keeps the launcher's handle: closing it stops the board process when
this transport started it (a board started with `blebridge sim start` is left running).

``faults`` puts a fault relay (blebridge.transport.faults) between the board's pty and the
host: bytes are dropped, bit-flipped or delayed in either direction as a lossy UART bridge
would, at positions fixed by ``seed`` (grammar in that module; e.g.
``sim:alice?faults=drop:0.001,flip:0.0005&seed=7``). The relay is ``transport.fault_relay``.
"""
from __future__ import annotations

from typing import Any, Optional
from urllib.parse import parse_qs

from ..errors import BlebridgeError, PortOpenError
from .serial_port import open_serial

_OPTIONS = ("air", "stack", "faults", "seed")
#: The simulated boards' BLE hosts (blebridge.sim.launcher.STACKS; not imported from there:
#: the launcher needs the sim extra).
_STACKS = ("bumble", "nimble")
#: How long (s) to wait for a board process whose pty ended to exit, to say why it ended.
LOSS_REASON_WAIT_S = 2.0


def parse_sim_spec(spec: str) -> tuple[str, Optional[str]]:
    """``sim:NAME[?air=SOCKET]`` -> (NAME, SOCKET or None). Raises PortOpenError if malformed."""
    body = spec[len("sim:"):]
    name, _, query = body.partition("?")
    if not name or "/" in name:
        raise PortOpenError(spec, "a simulated board needs a name" if not name
                            else "a simulated board's name cannot contain '/'",
                            "write sim:NAME, e.g. --port sim:alice")
    params = _params(spec, query)
    air = params.get("air", [None])[-1] or None
    return name, air


def _params(spec: str, query: str) -> dict[str, list[str]]:
    params = parse_qs(query, keep_blank_values=True, strict_parsing=False) if query else {}
    unknown = set(params) - set(_OPTIONS)
    if unknown:
        raise PortOpenError(spec, f"unknown option {sorted(unknown)[0]!r}",
                            "the options are ?air=SOCKET&stack=bumble|nimble"
                            "&faults=KIND[.DIR]:RATE[:MS],...&seed=N")
    return params


def parse_sim_stack(spec: str) -> Optional[str]:
    """The ``stack`` option of ``spec`` (None when absent). Raises PortOpenError for a stack
    that does not exist."""
    params = _params(spec, spec.partition("?")[2])
    if "stack" not in params:
        return None
    stack = params["stack"][-1]
    if stack not in _STACKS:
        raise PortOpenError(spec, f"unknown stack {stack!r}: the stacks are {', '.join(_STACKS)}",
                            f"write stack={' or stack='.join(_STACKS)}")
    return stack


def parse_sim_faults(spec: str) -> Optional[Any]:
    """The FaultPlan of ``spec``'s ``faults``/``seed`` options, or None when it has none.
    Raises PortOpenError naming the bad fault."""
    params = _params(spec, spec.partition("?")[2])
    if "faults" not in params and "seed" not in params:
        return None
    from .faults import parse_faults
    try:
        return parse_faults(",".join(params.get("faults", [])), (params.get("seed") or [None])[-1])
    except ValueError as exc:
        raise PortOpenError(spec, str(exc),
                            "write faults=KIND[.DIR]:RATE[:MS],... with KIND drop, flip or delay, "
                            "DIR board or host, e.g. ?faults=drop:0.001,flip:0.0005&seed=7") from None


def _owned(sim_board: Any) -> bool:
    # The launcher marks boards started for this process; a detached board outlives us.
    owned = getattr(sim_board, "owned", None)
    if owned is None:
        owned = not getattr(sim_board, "detached", False)
    return bool(owned)


class SimTransport:
    """A pyserial port on the board's pseudo-terminal (or its fault relay's) plus the
    launcher's handle."""

    def __init__(self, ser: Any, sim_board: Any, spec: str, fault_relay: Any = None) -> None:
        self._ser = ser
        self.sim_board = sim_board
        self.blebridge_spec = spec
        self.owned = _owned(sim_board)
        self.fault_relay = fault_relay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_ser", "sim_board", "blebridge_spec", "owned", "fault_relay"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._ser, name, value)

    @property
    def serial(self) -> Any:
        return self._ser

    def loss_reason(self) -> Optional[str]:
        """Why the link died, when the board process ended ("the simulated board process was
        killed by SIGKILL"); None if it still runs. The RPC client puts it in BoardLost."""
        board = self.sim_board
        explain = getattr(board, "exit_reason", None)
        if explain is None:
            return None
        try:
            # The pty ends while the process exits; give it a moment to be reaped.
            return explain(LOSS_REASON_WAIT_S)
        except Exception:    # an explanation must never hide the loss itself
            return None

    def close(self) -> None:
        try:
            self._ser.close()
        finally:
            relay, self.fault_relay = self.fault_relay, None
            if relay is not None:
                relay.close()
            if self.owned and self.sim_board is not None:
                board, self.sim_board = self.sim_board, None
                board.stop()


def open_sim(spec: str, **kw: Any) -> SimTransport:
    name, air = parse_sim_spec(spec)
    stack = parse_sim_stack(spec)
    plan = parse_sim_faults(spec)
    try:
        from ..sim import launcher
    except ImportError as exc:
        raise PortOpenError(spec, f"the simulator is not available ({exc})",
                            "install the sim extra: pip install 'blebridge[sim]'") from exc
    try:
        # stack only when the spec names one: resolve() otherwise picks the default itself.
        sim_board = (launcher.resolve(name, air=air) if stack is None
                     else launcher.resolve(name, air=air, stack=stack))
    except FileNotFoundError as exc:
        if "bb_nimble_sim" in str(exc):
            hint = "build it first: make nimble-sim NIMBLE=<mynewt-nimble checkout> (or set BLEBRIDGE_NIMBLE_SIM)"
        else:
            hint = "build the sim firmware first: make firmware (or set BLEBRIDGE_SIM_FIRMWARE)"
        raise PortOpenError(spec, f"cannot start the simulated board: {exc}", hint) from exc
    except (OSError, BlebridgeError, RuntimeError, ValueError) as exc:
        if isinstance(exc, PortOpenError):
            raise
        raise PortOpenError(spec, f"cannot start the simulated board: {exc}",
                            "run `blebridge sim list`; set BLEBRIDGE_DEBUG=1 for details") from exc
    relay = None
    try:
        path = sim_board.pty
        if plan is not None:
            from .faults import FaultRelay
            relay = FaultRelay(sim_board.pty, plan)
            path = relay.path
        ser = open_serial(path, **kw)
    except BaseException:
        if relay is not None:
            relay.close()
        if _owned(sim_board):
            sim_board.stop()
        raise
    return SimTransport(ser, sim_board, spec, relay)
