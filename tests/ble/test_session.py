"""The API-neutral event session of a board (blebridge.ble.session): dispatch by kind and by
connection, the connection table, the board's questions answered once, the delivered signal, the
registry."""
from __future__ import annotations

import concurrent.futures
from typing import Any, Callable

import pytest

from blebridge import protocol as P
from blebridge.ble import session as ble_session
from blebridge.wire import make_event

PEER = bytes([6, 5, 4, 3, 2, 1])


class FakeBoard:
    """What a session uses of blebridge.Board: listeners, call_nowait (replies recorded), and
    the host counters."""

    def __init__(self) -> None:
        self.events: list[Callable] = []
        self.lost: list[Callable] = []
        self.gaps: list[Callable] = []
        self.replies: list[tuple] = []
        self.received = 0
        self.closed = False

    def add_event_listener(self, fn: Callable) -> None:
        self.events.append(fn)

    def remove_event_listener(self, fn: Callable) -> None:
        self.events.remove(fn)

    def add_lost_listener(self, fn: Callable) -> None:
        self.lost.append(fn)

    def remove_lost_listener(self, fn: Callable) -> None:
        self.lost.remove(fn)

    def add_gap_listener(self, fn: Callable) -> None:
        self.gaps.append(fn)

    def remove_gap_listener(self, fn: Callable) -> None:
        self.gaps.remove(fn)

    def call_nowait(self, method: str, *args: Any, timeout: Any = None) -> concurrent.futures.Future:
        assert method == "reply"
        self.replies.append(args)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        fut.set_result(None)
        return fut

    def host_counters(self) -> dict[str, int]:
        return {"events": self.received}

    def close(self) -> None:
        self.closed = True

    def receive(self, name: str, *fields: Any) -> None:
        """An event read from the wire: counted, then handed to the listeners."""
        self.received += 1
        self.dispatch(name, *fields)

    def dispatch(self, name: str, *fields: Any) -> None:
        ev = make_event(P.EVENTS_BY_NAME[name].code, tuple(fields))
        for fn in list(self.events):
            fn(ev)


@pytest.fixture
def board():
    return FakeBoard()


@pytest.fixture
def session(board):
    s = ble_session.session_for(board)
    yield s
    s.close()


def collect(session, **kw) -> list:
    seen: list = []
    session.subscribe(lambda ev: seen.append(ev.name), **kw)
    return seen


# -- dispatch ------------------------------------------------------------------------------------

def test_a_subscriber_of_every_kind_gets_every_event(board, session):
    seen = collect(session)
    board.receive("SCAN_DONE", 0)
    board.receive("GATTC_WRITE_DONE", 1, 3, 0)
    assert seen == ["SCAN_DONE", "GATTC_WRITE_DONE"]


def test_a_subscriber_of_one_kind_gets_only_that_kind(board, session):
    seen = collect(session, kinds=[P.EV_SCAN_DONE])
    board.receive("GATTC_WRITE_DONE", 1, 3, 0)
    board.receive("SCAN_DONE", 0)
    assert seen == ["SCAN_DONE"]


def test_a_subscriber_of_one_connection_gets_only_its_events(board, session):
    seen: list = []
    session.subscribe(lambda ev: seen.append(ev.fields[0]), conn=2)
    board.receive("GATTC_WRITE_DONE", 1, 3, 0)
    board.receive("GATTC_WRITE_DONE", 2, 3, 0)
    assert seen == [2]


def test_a_subscriber_of_one_connection_gets_no_event_without_a_connection(board, session):
    seen = collect(session, conn=0)
    board.receive("SCAN_DONE", 0)
    assert seen == []


def test_an_unsubscribed_subscriber_gets_nothing_more(board, session):
    seen: list = []
    sub = session.subscribe(lambda ev: seen.append(ev.name))
    session.unsubscribe(sub)
    board.receive("SCAN_DONE", 0)
    assert seen == []


def test_a_failing_subscriber_does_not_stop_the_next_one(board, session, capsys):
    def fail(ev: Any) -> None:
        raise RuntimeError("boom")
    session.subscribe(fail)
    seen = collect(session)
    board.receive("SCAN_DONE", 0)
    assert seen == ["SCAN_DONE"]


def test_lost_subscribers_are_told_the_link_is_lost(board, session):
    told: list = []
    session.subscribe_lost(told.append)
    exc = RuntimeError("unplugged")
    for fn in board.lost:
        fn(exc)
    assert told == [exc]


# -- connection table ----------------------------------------------------------------------------

def test_a_central_connecting_is_a_connection_where_we_are_peripheral(board, session):
    board.receive("CENTRAL_CONNECT", 0, 1, PEER)
    c = session.connection(0)
    assert (c.addr_type, c.addr, c.role) == (1, PEER, ble_session.ROLE_PERIPHERAL)


def test_connecting_to_a_peripheral_is_a_connection_where_we_are_central(board, session):
    board.receive("PERIPHERAL_CONNECT", 3, 0, PEER)
    assert session.connection(3).role == ble_session.ROLE_CENTRAL


def test_the_table_has_the_connection_before_subscribers_see_its_event(board, session):
    known: list = []
    session.subscribe(lambda ev: known.append(session.connection(0) is not None))
    board.receive("CENTRAL_CONNECT", 0, 1, PEER)
    assert known == [True]


def test_a_disconnect_removes_the_connection(board, session):
    board.receive("CENTRAL_CONNECT", 0, 1, PEER)
    board.receive("CENTRAL_DISCONNECT", 0, 1, PEER, 0x13)
    assert session.connection(0) is None


def test_an_mtu_exchange_sets_the_connections_mtu(board, session):
    board.receive("CENTRAL_CONNECT", 0, 1, PEER)
    board.receive("MTU_EXCHANGED", 0, 185)
    assert session.connection(0).mtu == 185


def test_an_encryption_update_sets_the_connections_security(board, session):
    board.receive("CENTRAL_CONNECT", 0, 1, PEER)
    board.receive("ENCRYPTION_UPDATE", 0, True, True, False, 16)
    c = session.connection(0)
    assert (c.encrypted, c.authenticated, c.bonded, c.key_size) == (True, True, False, 16)


def test_is_connected_to_finds_a_peer_by_address(board, session):
    board.receive("PERIPHERAL_CONNECT", 3, 0, PEER)
    assert session.is_connected_to(0, PEER) and not session.is_connected_to(1, PEER)


# -- questions -----------------------------------------------------------------------------------

def test_a_question_nobody_answers_gets_its_default(board, session):
    board.receive("GATTS_READ_REQUEST", 7, 0, 3)
    assert board.replies == [(7, 0)]


def test_a_set_secret_nobody_answers_is_kept_in_the_boards_bond_store(board, session, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    board.receive("SET_SECRET", 9, 1, b"key", b"value")
    assert board.replies == [(9, True)]
    assert session.stored_secret(1, 0, b"key") == b"value"


def test_a_get_secret_nobody_answers_is_answered_from_the_boards_bond_store(board, session,
                                                                           tmp_path, monkeypatch):
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    session.store_secret(1, b"key", b"value")
    board.receive("GET_SECRET", 8, 1, 0, b"key")
    board.receive("GET_SECRET", 10, 1, 0, b"other")
    assert board.replies == [(8, b"value"), (10, None)]


def test_a_secret_question_a_subscriber_answers_does_not_touch_the_store(board, session, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    session.subscribe(lambda ev: session.answer(ev.fields[0], False))
    board.receive("SET_SECRET", 9, 1, b"key", b"value")
    assert board.replies == [(9, False)] and session.stored_secret(1, 0, b"key") is None


def test_a_subscribers_answer_is_sent_instead_of_the_default(board, session):
    session.subscribe(lambda ev: session.answer(ev.fields[0], 0x05))
    board.receive("GATTS_READ_REQUEST", 7, 0, 3)
    assert board.replies == [(7, 0x05)]


def test_a_question_is_answered_once_whoever_answers(board, session):
    session.subscribe(lambda ev: session.answer(ev.fields[0], 0x05))
    session.subscribe(lambda ev: session.answer(ev.fields[0], 0x08))
    board.receive("GATTS_READ_REQUEST", 7, 0, 3)
    assert board.replies == [(7, 0x05)]


def test_a_second_answer_is_refused(board, session):
    results: list = []
    session.subscribe(lambda ev: results.extend([session.answer(7, 1), session.answer(7, 2)]))
    board.receive("L2CAP_ACCEPT", 7, 0, 0x40, 0x80, 100, 100)
    assert results == [True, False]


def test_an_answer_after_the_dispatch_is_refused(board, session):
    board.receive("GATTS_READ_REQUEST", 7, 0, 3)
    assert session.answer(7, 0x05) is False


# -- delivered signal ------------------------------------------------------------------------------

def test_no_event_is_due_when_every_received_event_was_dispatched(board, session):
    board.receive("SCAN_DONE", 0)
    assert session.events_due() == 0


def test_an_event_received_and_not_yet_dispatched_is_due(board, session):
    due: list = []
    session.subscribe(lambda ev: due.append(session.events_due()))
    board.received += 1        # a second event read from the wire, still queued
    board.receive("SCAN_DONE", 0)
    assert due == [1]


def test_events_received_before_the_session_are_never_due():
    board = FakeBoard()
    board.received = 5
    s = ble_session.session_for(board)
    try:
        assert s.events_due() == 0
    finally:
        s.close()


def test_dispatched_events_are_counted(board, session):
    board.receive("SCAN_DONE", 0)
    board.receive("SCAN_DONE", 0)
    assert session.delivered == 2


# -- registry ------------------------------------------------------------------------------------

def test_one_session_per_board(board, session):
    assert ble_session.session_for(board) is session


def test_attach_makes_one_object_per_layer(session):
    made: list = []
    first = session.attach("layer", lambda s: made.append(s) or object())
    assert session.attach("layer", lambda s: object()) is first


def test_the_last_layer_detaching_ends_the_session(board):
    s = ble_session.session_for(board)
    s.attach("a", lambda _s: object())
    s.attach("b", lambda _s: object())
    s.detach("a")
    s.detach("b")
    assert ble_session.session_for(board) is not s
    ble_session.session_for(board).close()


def test_a_layer_detaching_leaves_the_session_to_the_others(board):
    s = ble_session.session_for(board)
    s.attach("a", lambda _s: object())
    s.attach("b", lambda _s: object())
    s.detach("a")
    try:
        assert ble_session.session_for(board) is s
    finally:
        s.close()


def test_a_closed_session_stops_listening_to_the_board(board):
    s = ble_session.session_for(board)
    s.close()
    assert board.events == [] and board.lost == [] and board.gaps == []


def test_closing_a_session_for_a_given_board_leaves_the_board_open(board):
    ble_session.session_for(board).close()
    assert not board.closed


def test_a_layer_that_fails_to_attach_to_an_unused_session_ends_it(board):
    s = ble_session.session_for(board)

    def fail(_s: Any) -> Any:
        raise RuntimeError("cannot")
    with pytest.raises(RuntimeError):
        s.attach("layer", fail)
    assert board.events == []


class ResettableBoard(FakeBoard):
    def __init__(self) -> None:
        super().__init__()
        self.called: list[str] = []

    def call(self, method: str, *args: Any, timeout: Any = None) -> Any:
        self.called.append(method)
        return None


@pytest.fixture
def opened(monkeypatch):
    """open_board replaced: every spec opens a new ResettableBoard, listed here."""
    import blebridge
    boards: list[ResettableBoard] = []

    def fake_open_board(spec: str) -> ResettableBoard:
        boards.append(ResettableBoard())
        return boards[-1]
    monkeypatch.setattr(blebridge, "open_board", fake_open_board)
    yield boards
    for s in ble_session.sessions():
        if s.board in boards:
            s.close()


def test_open_session_resets_the_board_it_opens(opened):
    ble_session.open_session("fake:one")
    assert opened[0].called == ["reset"]


def test_open_session_opens_a_port_once(opened):
    assert ble_session.open_session("fake:one") is ble_session.open_session("fake:one")


def test_the_session_of_an_opened_board_is_its_session_for(opened):
    s = ble_session.open_session("fake:one")
    assert ble_session.session_for(opened[0]) is s


def test_closing_an_opened_session_closes_its_board(opened):
    ble_session.open_session("fake:one").close()
    assert opened[0].closed


def test_every_layer_on_a_board_shares_one_bond_store(tmp_path, monkeypatch):
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    session = ble_session.Session(FakeBoard())
    assert session.store_secret(1, b"k", b"v") is True
    # A second layer asks through the same session: it sees what the first stored, at once.
    assert session.secret_store() is session.secret_store()
    assert session.stored_secret(1, 0, b"k") == b"v"


def test_unusable_bond_store_answers_the_board_safely_and_says_why(tmp_path, monkeypatch, capsys):
    secrets = tmp_path / "secrets"
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(secrets))
    session = ble_session.Session(FakeBoard())
    store_file = session.secret_store().path
    store_file.parent.mkdir(mode=0o700, exist_ok=True)
    store_file.write_text("{truncated")
    session.use_secret_store(None)     # reloaded from the (now corrupt) file on next use
    assert session.stored_secret(1, 0, b"k") is None
    assert session.store_secret(1, b"k", b"v") is False
    err = capsys.readouterr().err
    assert "answered the board: no such secret" in err and "answered the board: not stored" in err


def test_default_port_is_blebridge_port_from_the_environment(monkeypatch):
    from blebridge.ble.session import DEFAULT_PORT, default_port
    monkeypatch.delenv("BLEBRIDGE_PORT", raising=False)
    assert default_port() == DEFAULT_PORT
    monkeypatch.setenv("BLEBRIDGE_PORT", "sim:elsewhere")
    assert default_port() == "sim:elsewhere"


def test_layer_default_is_replaced_once_it_is_no_longer_alive(monkeypatch):
    from blebridge.ble import session as ble_session

    class Obj:
        def __init__(self, session):
            self.session, self.closed = session, False

    made = []
    monkeypatch.setattr(ble_session.Layer, "on", lambda self, board, make: made.append(make(None)) or made[-1])
    layer = ble_session.Layer("test", lambda obj: not obj.closed)
    first = layer.default(Obj)
    assert layer.default(Obj) is first and layer.current() is first
    first.closed = True
    assert layer.current() is None
    second = layer.default(Obj)
    assert second is not first and len(made) == 2
