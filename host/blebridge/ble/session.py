"""One event session per board, shared by every API object on that board.

A board's events reach the host on its dispatcher thread (blebridge.rpc). The session is the one
listener every API layer goes through:

- dispatch: each event goes to the subscribers of its kind (event code) and, for events about a
  connection, of that connection, in order, on the dispatcher thread;
- the connection table: conn handle -> peer address, our role, ATT MTU, encryption state, kept
  from the events before any subscriber sees them;
- the board's questions (events with a token: read authorisation, L2CAP accept, get/set
  secret): answered once with a ``reply`` call; the first answer wins, and a question no
  subscriber answered gets its default answer when the dispatch ends (get/set secret: the
  board's bond store's answer);
- the "delivered" signal: whether the board has received events that have not been dispatched
  yet (``events_due``), from the board's RPC counters;
- the bond store: one per board (``secret_store``), whichever layers pair on it, and the
  store's answers to the board's get/set secret questions (``stored_secret``, ``store_secret``);
- the registry: one session per board (``session_for``), or per port opened here
  (``open_session``, which resets the board first); API objects attach under a key and the
  session ends when the last one detaches.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from .. import calls
from .. import protocol as P

#: Default answer of each question when no subscriber answers it (schema, method ``reply``):
#: reads allowed (ATT error 0), L2CAP channels accepted (result 0), no secret, not stored.
QUESTION_DEFAULTS: dict[int, Any] = {
    P.EV_GATTS_READ_REQUEST: 0,
    P.EV_L2CAP_ACCEPT: 0,
    P.EV_GET_SECRET: None,
    P.EV_SET_SECRET: False,
}
#: Questions the board's bond store answers when no subscriber does.
_SECRET_QUESTIONS = frozenset((P.EV_GET_SECRET, P.EV_SET_SECRET))
#: ATT MTU of a connection until an exchange says otherwise (Core spec Vol 3 Part F 3.2.8), bytes.
ATT_MTU_DEFAULT = 23

#: Our role on a connection, by the event that opened it.
ROLE_PERIPHERAL = "peripheral"   # CENTRAL_CONNECT: a central connected to us
ROLE_CENTRAL = "central"         # PERIPHERAL_CONNECT: we connected to a peripheral

_CONNECT = {P.EV_CENTRAL_CONNECT: ROLE_PERIPHERAL, P.EV_PERIPHERAL_CONNECT: ROLE_CENTRAL}
_DISCONNECT = (P.EV_CENTRAL_DISCONNECT, P.EV_PERIPHERAL_DISCONNECT)
_TABLE_EVENTS = frozenset((*_CONNECT, *_DISCONNECT, P.EV_MTU_EXCHANGED, P.EV_ENCRYPTION_UPDATE))

EventFn = Callable[[Any], Any]


@dataclass
class Connection:
    """An open connection as the board's events described it. ``addr`` is as on air (least
    significant byte first)."""

    conn: int
    addr_type: int
    addr: bytes
    role: str
    mtu: int = ATT_MTU_DEFAULT
    encrypted: bool = False
    authenticated: bool = False
    bonded: bool = False
    key_size: int = 0


class Subscription:
    """A subscriber: ``fn(event)`` for events of ``kinds`` (codes; None: all) about ``conn``
    (None: any, including events about no connection)."""

    __slots__ = ("fn", "kinds", "conn")

    def __init__(self, fn: EventFn, kinds: Optional[frozenset], conn: Optional[int]) -> None:
        self.fn = fn
        self.kinds = kinds
        self.conn = conn


class Session:
    """The event session of one board. Make it with :func:`session_for` or :func:`open_session`."""

    def __init__(self, board: Any, *, owned: bool = False, spec: Optional[str] = None) -> None:
        self.board = board
        #: Whether closing the session closes the board (it was opened here).
        self.owned = owned
        self.spec = spec
        self.connections: dict[int, Connection] = {}
        #: Events dispatched so far (counted as their dispatch starts).
        self.delivered = 0
        #: Events whose dispatch has ended (every subscriber returned, a question answered).
        self.dispatched = 0
        self._lock = threading.Lock()
        self._subs: tuple[Subscription, ...] = ()
        self._lost_fns: tuple[Callable[[BaseException], Any], ...] = ()
        self._gap_fns: tuple[Callable[[Any], Any], ...] = ()
        # token -> default answer of the questions being dispatched and not answered yet.
        self._open_questions: dict[int, Any] = {}
        self._attached: dict[str, Any] = {}
        self._secrets: Any = None      # bonds.SecretStore, loaded on first use
        self.closed = False
        board.add_event_listener(self._on_event)
        board.add_lost_listener(self._on_lost)
        add_gap = getattr(board, "add_gap_listener", None)
        if add_gap is not None:
            add_gap(self._on_gap)
        # Read after registering: every event counted later reaches _on_event, so this is never
        # below the true number of events that never will (it is lowered in events_due).
        self._not_ours = self.events_received()

    # -- subscribers ---------------------------------------------------------------------------

    def subscribe(self, fn: EventFn, kinds: Optional[Iterable[int]] = None,
                  conn: Optional[int] = None) -> Subscription:
        """Call ``fn(event)`` for every event of ``kinds`` (event codes; None: every kind) about
        connection ``conn`` (None: any). Subscribers run in the order they subscribed."""
        sub = Subscription(fn, None if kinds is None else frozenset(kinds), conn)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def subscribe_lost(self, fn: Callable[[BaseException], Any]) -> None:
        """Call ``fn(exc)`` when the board resets (BoardReset) or its link is lost."""
        with self._lock:
            self._lost_fns = (*self._lost_fns, fn)

    def unsubscribe_lost(self, fn: Callable[[BaseException], Any]) -> None:
        with self._lock:
            self._lost_fns = tuple(f for f in self._lost_fns if f is not fn)

    def subscribe_gap(self, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(gap)`` for every gap in the board's event frames (blebridge.LinkGap)."""
        with self._lock:
            self._gap_fns = (*self._gap_fns, fn)

    def unsubscribe_gap(self, fn: Callable[[Any], Any]) -> None:
        with self._lock:
            self._gap_fns = tuple(f for f in self._gap_fns if f is not fn)

    # -- questions -----------------------------------------------------------------------------

    def answer(self, token: int, value: Any) -> bool:
        """Answer the board's question ``token``; False (and nothing sent) if it was answered
        already or is not being asked."""
        with self._lock:
            if token not in self._open_questions:
                return False
            del self._open_questions[token]
        self._reply(token, value)
        return True

    def _reply(self, token: int, value: Any) -> None:
        fut = calls.reply_nowait(self.board, token=token, value=value)

        def done(f: Any) -> None:
            exc = f.exception()
            if exc is not None and not self.closed:
                print(f"blebridge: answering the board's question {token} failed: {exc}", file=sys.stderr)

        fut.add_done_callback(done)

    # -- bonds ---------------------------------------------------------------------------------

    def secret_store(self) -> Any:
        """The host's store of this board's bonding secrets (bonds.SecretStore), one per board
        for every layer on it, loaded on first use. Raises SecretStoreError when its file cannot
        be used; the next call tries again."""
        from .bonds import SecretStore
        with self._lock:
            if self._secrets is None:
                self._secrets = SecretStore.of_board(self.board)
            return self._secrets

    def use_secret_store(self, store: Any) -> None:
        """Keep this board's secrets in ``store`` (a bonds.SecretStore; None: the board's own
        file, as by default)."""
        with self._lock:
            self._secrets = store

    def stored_secret(self, sec_type: int, index: int, key: Optional[bytes]) -> Optional[bytes]:
        """The store's answer to the board's GET_SECRET. A store that cannot be used is told on
        stderr (as a board prints a handler's exception) and the board gets the safe answer,
        "no such secret"."""
        from .bonds import SecretStoreError
        try:
            return self.secret_store().get(sec_type, index, key)
        except SecretStoreError as exc:
            print(f"blebridge: {exc}; answered the board: no such secret", file=sys.stderr)
            return None

    def store_secret(self, sec_type: int, key: bytes, value: Optional[bytes]) -> bool:
        """The store's answer to the board's SET_SECRET (``value`` None: delete); False, with
        the reason on stderr, when the store cannot be used."""
        from .bonds import SecretStoreError
        try:
            return self.secret_store().set(sec_type, key, value)
        except SecretStoreError as exc:
            print(f"blebridge: {exc}; answered the board: not stored", file=sys.stderr)
            return False

    # -- connections ---------------------------------------------------------------------------

    def connection(self, conn: int) -> Optional[Connection]:
        with self._lock:
            return self.connections.get(conn)

    def is_connected_to(self, addr_type: int, addr: bytes) -> bool:
        """Whether a connection to this peer (address as on air) is open."""
        with self._lock:
            return any(c.addr_type == addr_type and c.addr == addr for c in self.connections.values())

    def forget_connections(self) -> None:
        """Empty the table (the radio was turned off: the board has no connection left)."""
        with self._lock:
            self.connections.clear()

    def _track(self, code: int, f: Any) -> None:
        role = _CONNECT.get(code)
        with self._lock:
            if role is not None:
                self.connections[int(f.conn)] = Connection(int(f.conn), int(f.addr_type), bytes(f.addr), role)
            elif code in _DISCONNECT:
                self.connections.pop(int(f.conn), None)
            else:
                c = self.connections.get(int(f.conn))
                if c is None:
                    return
                if code == P.EV_MTU_EXCHANGED:
                    c.mtu = int(f.mtu)
                else:
                    c.encrypted, c.authenticated = bool(f.encrypted), bool(f.authenticated)
                    c.bonded, c.key_size = bool(f.bonded), int(f.key_size)

    # -- delivered -----------------------------------------------------------------------------

    def events_received(self) -> int:
        """The board's count of events received from the wire (0 if it keeps none)."""
        counters = getattr(self.board, "host_counters", None)
        if counters is None:
            return 0
        try:
            return int(counters().get("events", 0))
        except Exception:
            return 0

    def events_due(self) -> int:
        """Events the board has received that have not been dispatched yet.

        received - delivered is never below the number of events that never reach this session
        (counted before it listened); _not_ours starts at or above that number and is lowered
        to each smaller difference seen, so the result is never more than the events really on
        their way: a positive answer always ends with another dispatch.
        """
        due = self.events_received() - self.delivered - self._not_ours
        if due < 0:
            self._not_ours += due
            due = 0
        return due

    # -- the board's listeners -----------------------------------------------------------------

    def _on_event(self, ev: Any) -> None:
        if self.closed:
            return
        self.delivered += 1
        code = ev.code
        spec = P.EVENTS.get(code)
        question = spec is not None and spec.question and bool(ev.fields)
        token = ev.fields[0] if question else None
        if question:
            with self._lock:
                self._open_questions[token] = QUESTION_DEFAULTS.get(code)
        typed: Any = None
        if code in _TABLE_EVENTS:
            try:
                typed = ev.typed
                self._track(code, typed)
            except Exception:
                typed = None    # a malformed event: subscribers see it (and its error) as it is
        try:
            for sub in self._subs:
                if sub.kinds is not None and code not in sub.kinds:
                    continue
                if sub.conn is not None:
                    if typed is None:
                        try:
                            typed = ev.typed
                        except Exception:
                            continue
                    if getattr(typed, "conn", None) != sub.conn:
                        continue
                try:
                    sub.fn(ev)
                except Exception as exc:   # one subscriber's failure must not starve the others
                    print(f"blebridge: {getattr(self.board, 'spec', '')}: a subscriber to "
                          f"{ev.name} failed: {exc!r}", file=sys.stderr)
        finally:
            if question:
                with self._lock:
                    unanswered = token in self._open_questions
                    default = self._open_questions.pop(token, None)
                if unanswered:
                    if code in _SECRET_QUESTIONS:
                        default = self._store_answer(code, ev, default)
                    self._reply(token, default)
            self.dispatched += 1

    def _store_answer(self, code: int, ev: Any, default: Any) -> Any:
        """A get/set secret question no layer answered: the board's bond store answers it (every
        layer keeps its bonds there; only MicroPython's lets the script's IRQ handler answer
        first). A malformed question gets the safe default."""
        try:
            f = ev.typed
            key = None if f.key is None else bytes(f.key)
            if code == P.EV_GET_SECRET:
                return self.stored_secret(int(f.sec_type), int(f.index), key)
            return self.store_secret(int(f.sec_type), bytes(f.key),
                                     None if f.value is None else bytes(f.value))
        except Exception as exc:
            print(f"blebridge: {getattr(self.board, 'spec', '')}: {ev.name} not answered from the "
                  f"bond store: {exc!r}", file=sys.stderr)
            return default

    def _on_lost(self, exc: BaseException) -> None:
        for fn in self._lost_fns:
            fn(exc)

    def _on_gap(self, gap: Any) -> None:
        for fn in self._gap_fns:
            fn(gap)

    # -- attached API objects and the registry ---------------------------------------------------

    def attach(self, key: str, make: Callable[["Session"], Any]) -> Any:
        """The API object of layer ``key`` on this session, made with ``make(session)`` the
        first time (one object per layer and board)."""
        with _registry_lock:
            obj = self._attached.get(key)
            if obj is None:
                try:
                    obj = self._attached[key] = make(self)
                except BaseException:
                    if not self._attached:
                        self.close()    # nobody uses the board: do not keep it listened to
                    raise
            return obj

    def attached(self, key: str) -> Any:
        """The API object of layer ``key``, or None."""
        return self._attached.get(key)

    def detach(self, key: str) -> None:
        """Layer ``key`` is done with the board; the last one to go ends the session."""
        with _registry_lock:
            self._attached.pop(key, None)
            if self._attached:
                return
        self.close()

    def close(self) -> None:
        """Stop listening to the board, leave the registry, and close the board if the session
        opened it."""
        with _registry_lock:
            if self.closed:
                return
            self.closed = True
            if _by_board.get(id(self.board)) is self:
                del _by_board[id(self.board)]
            if self.spec is not None and _by_spec.get(self.spec) is self:
                del _by_spec[self.spec]
        try:
            self.board.remove_event_listener(self._on_event)
            self.board.remove_lost_listener(self._on_lost)
            remove_gap = getattr(self.board, "remove_gap_listener", None)
            if remove_gap is not None:
                remove_gap(self._on_gap)
        except Exception:
            pass
        if self.owned:
            self.board.close()

    def __repr__(self) -> str:
        return f"<Session on {getattr(self.board, 'spec', self.board)!r}>"


# The registry. Reentrant: a layer's make() may look a session up again.
_registry_lock = threading.RLock()
_by_board: dict[int, Session] = {}
_by_spec: dict[str, Session] = {}


def session_for(board: Any) -> Session:
    """The session of an open board (made on first use; the board stays the caller's)."""
    with _registry_lock:
        session = _by_board.get(id(board))
        if session is None:
            session = _by_board[id(board)] = Session(board)
        return session


def open_session(spec: str) -> Session:
    """The session of the board at port ``spec``, opened (once) and reset here, so a script
    starts from the state after boot; closing the session closes the board."""
    with _registry_lock:
        session = _by_spec.get(spec)
        if session is not None:
            return session
        from .. import open_board
        board = open_board(spec)
        try:
            calls.reset(board)
        except BaseException:
            board.close()
            raise
        session = Session(board, owned=True, spec=spec)
        _by_spec[spec] = session
        _by_board[id(board)] = session
        return session


def sessions() -> list[Session]:
    """Every open session."""
    with _registry_lock:
        return list({id(s): s for s in (*_by_board.values(), *_by_spec.values())}.values())


# -- the board an API layer uses when none is named --------------------------------------------

#: Port of the default board when nothing else says (every API layer, the REPL, scripts).
DEFAULT_PORT = "sim:blebridge"


def default_port() -> str:
    """The default board's port: env BLEBRIDGE_PORT, else DEFAULT_PORT."""
    return os.environ.get("BLEBRIDGE_PORT") or DEFAULT_PORT


def session_of(board: Any = None) -> Session:
    """The session of ``board``: a port (opened once and reset), an open Board (stays the
    caller's), or None (the default port)."""
    if board is None or isinstance(board, str):
        return open_session(board or default_port())
    return session_for(board)


class Layer:
    """An API layer's objects, one per board (attached to the board's session under ``key``),
    and its default one: the object its module-level functions use (``_bleio.adapter``,
    ``aioble``'s functions, Zerynth's ``wireless.ble``). ``alive(obj)`` says whether an object
    is still usable (a closed or lost one is replaced on the next :meth:`default`)."""

    def __init__(self, key: str, alive: Callable[[Any], bool]) -> None:
        self.key = key
        self._alive = alive
        self._default: Any = None
        self._observers: list[Callable[[Session], None]] = []

    def observe(self, fn: Callable[[Session], None]) -> None:
        """``fn(session)`` is called with the session of every object handed out from now on
        (a runtime watching the boards a script uses)."""
        with _registry_lock:
            if fn not in self._observers:
                self._observers.append(fn)

    def on(self, board: Any, make: Callable[[Session], Any]) -> Any:
        """The object of ``board`` (see :func:`session_of`), made with ``make(session)`` the
        first time."""
        session = session_of(board)
        obj = session.attach(self.key, make)
        for fn in list(self._observers):
            fn(session)
        return obj

    def default(self, make: Callable[[Session], Any]) -> Any:
        """The default object, made on the default port on first use (or after it closed)."""
        with _registry_lock:
            if self._default is None or not self._alive(self._default):
                self._default = self.on(None, make)
            return self._default

    def current(self) -> Any:
        """The default object if there is a usable one, else None (nothing is opened)."""
        with _registry_lock:
            obj = self._default
            return obj if obj is not None and self._alive(obj) else None

    def set_default(self, obj: Any) -> None:
        with _registry_lock:
            self._default = obj

    def forget(self, obj: Any) -> None:
        """``obj`` is closed: it stops being the default, and it leaves its board's session
        (the last layer to leave ends the session)."""
        with _registry_lock:
            if self._default is obj:
                self._default = None
        obj.session.detach(self.key)

    def close_all(self, owned_only: bool = False) -> None:
        """Close every object of this layer (and the boards their sessions opened); with
        ``owned_only``, only those on boards a session opened (not on a caller's Board)."""
        self.set_default(None)
        for session in sessions():
            obj = session.attached(self.key)
            if obj is not None and (session.owned or not owned_only):
                obj.close()
