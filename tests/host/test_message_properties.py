"""Property-based tests (hypothesis) of the host's message decoding (blebridge.rpc.Board).

Frames whose payload is anything at all reach Board's decoder; whatever they hold, nothing
escapes it (an escaping exception would take the link down as if the board were unplugged),
and every frame is counted: a response, an event message, or a bad message.

The board under test reads from a transport that never has data, and the test hands chunks to
the decoder itself (Board._on_chunk, what the reader thread calls with each chunk read).
Settings are fixed for CI: derandomized, a fixed example count, no deadline, no database.
"""
from __future__ import annotations

import threading

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blebridge import protocol as P
from blebridge.framing import MAX_PAYLOAD, FrameDecoder, encode_frame
from blebridge.rpc import Board

CI = settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class SilentTransport:
    """A pyserial-like port that never has data: the board's reader thread idles on it."""

    in_waiting = 0
    blebridge_spec = "silent"

    def __init__(self) -> None:
        self._closed = threading.Event()

    def read(self, n: int) -> bytes:
        self._closed.wait(0.05)
        return b""

    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        self._closed.set()


@pytest.fixture(scope="module")
def board():
    b = Board(SilentTransport(), timeout=5)
    yield b
    b.close()


def counts(b: Board) -> dict[str, int]:
    c = b.host_counters()
    return {k: c[k] for k in ("bad_messages", "unmatched_responses", "events")}


def frames(payloads: list[bytes]) -> bytes:
    return b"".join(encode_frame(p) for p in payloads if 1 <= len(p) <= MAX_PAYLOAD)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64 - 1), st.binary(max_size=20),
                    st.text(max_size=10), st.floats(allow_nan=False))
cbor_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=6), st.dictionaries(st.one_of(st.integers(-5, 5), st.text(max_size=3)), inner,
                                                  max_size=4)), max_leaves=20)
# Lists that start like our messages, so that the fields behind the kind get exercised.
message_like = st.tuples(st.sampled_from([P.MSG_REQ, P.MSG_RSP, P.MSG_EVT, P.MSG_EVT_BATCH, 9]),
                         st.lists(cbor_values, max_size=6)).map(lambda t: [t[0], *t[1]])


@CI
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
def test_frames_of_any_bytes_are_counted_and_keep_the_link(board, payloads):
    before = counts(board)
    board._on_chunk(frames(payloads))
    after = counts(board)
    assert not board.is_lost
    handled = after["bad_messages"] - before["bad_messages"] \
        + after["unmatched_responses"] - before["unmatched_responses"]
    assert handled <= len(payloads)


@CI
@given(st.lists(st.one_of(cbor_values, message_like), min_size=1, max_size=8))
def test_any_cbor_message_is_counted_and_keeps_the_link(board, msgs):
    payloads = [cbor2.dumps(m) for m in msgs]
    payloads = [p for p in payloads if len(p) <= MAX_PAYLOAD]
    before = counts(board)
    board._on_chunk(frames(payloads))
    after = counts(board)
    assert not board.is_lost
    assert after["bad_messages"] + after["unmatched_responses"] \
        - before["bad_messages"] - before["unmatched_responses"] <= len(payloads)


@CI
@given(st.lists(st.one_of(cbor_values.filter(lambda v: not isinstance(v, list))), min_size=1,
                max_size=8))
def test_a_message_that_is_not_an_array_is_a_bad_message(board, msgs):
    payloads = [p for p in (cbor2.dumps(m) for m in msgs) if len(p) <= MAX_PAYLOAD]
    before = counts(board)
    board._on_chunk(frames(payloads))
    after = counts(board)
    assert after["bad_messages"] - before["bad_messages"] == len(payloads)
    assert after["unmatched_responses"] == before["unmatched_responses"]
    assert after["events"] == before["events"]


event = st.tuples(st.sampled_from(sorted(c for c in P.EVENTS if c != P.EV_BOOT)),
                  st.lists(scalars, max_size=4)).map(lambda t: [t[0], *t[1]])
# Event frames carry a sequence number (any: a jump is a reported gap, never a lost event).
seq = st.integers(0, P.LIMITS["EVENT_SEQ_MOD"] - 1)
well_formed = st.one_of(
    st.tuples(st.just("rsp"), st.integers(2**31, 2**32 - 1), st.integers(0, 30), scalars),
    st.tuples(st.just("evt"), seq, event),
    st.tuples(st.just("batch"), seq, st.lists(event, max_size=5)),
)


@CI
@given(st.lists(st.tuples(well_formed, st.binary(max_size=40)), min_size=1, max_size=8),
       st.integers(1, 64))
def test_well_formed_messages_among_garbage_are_all_counted(board, items, chunk):
    data = b""
    want = {"bad_messages": 0, "unmatched_responses": 0, "events": 0}
    for (kind, *rest), garbage in items:
        if kind == "rsp":
            rid, status, result = rest      # ids far above those of real calls: never pending
            payload = cbor2.dumps([P.MSG_RSP, rid, status, result])
            want["unmatched_responses"] += 1
        elif kind == "evt":
            payload = cbor2.dumps([P.MSG_EVT, rest[0], *rest[1]])
            want["events"] += 1
        else:
            payload = cbor2.dumps([P.MSG_EVT_BATCH, rest[0], *rest[1]])
            want["events"] += len(rest[1])
        # Garbage, then a delimiter before the frame. Garbage that happens to decode to a frame
        # (its last two bytes a matching CRC) is left out, so that every frame is one of ours.
        garbage = garbage.replace(b"\x00", b"")
        if FrameDecoder().feed(garbage + b"\x00"):
            garbage = b""
        data += garbage + b"\x00" + encode_frame(payload)
    before = counts(board)
    for i in range(0, len(data), chunk):
        board._on_chunk(data[i:i + chunk])
    assert {k: v - before[k] for k, v in counts(board).items()} == want
    assert not board.is_lost
