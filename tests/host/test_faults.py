"""The fault relay of simulated boards: its grammar, seeded byte positions, and what it does to
a link (lost requests time out, damaged frames are recorded, a hang-up reaches the host)."""
from __future__ import annotations

import threading

import cbor2
import pytest

from blebridge import BoardLost, CallTimeout, PortOpenError, open_board
from blebridge import protocol as P
from blebridge.framing import FrameDecoder, encode_frame
from blebridge.transport.faults import DEFAULT_DELAY_MS, FaultRelay, _Stream, parse_faults
from blebridge.transport.sim import parse_sim_faults, parse_sim_spec
from event_log import collect

WAIT_S = 10.0


def test_fault_applies_to_both_directions_without_a_direction():
    plan = parse_faults("drop:0.01")
    assert plan.to_board.drop == plan.to_host.drop == 0.01


def test_fault_with_a_direction_applies_to_that_direction_only():
    plan = parse_faults("flip.host:0.002,drop.board:0.5")
    assert (plan.to_host.flip, plan.to_board.flip) == (0.002, 0.0)
    assert (plan.to_board.drop, plan.to_host.drop) == (0.5, 0.0)


def test_delay_takes_its_length_in_ms():
    plan = parse_faults("delay:0.001:30,delay.board:0.1")
    assert (plan.to_host.delay, plan.to_host.delay_ms) == (0.001, 30.0)
    assert (plan.to_board.delay, plan.to_board.delay_ms) == (0.1, 30.0)
    assert parse_faults("delay:0.1").to_host.delay_ms == DEFAULT_DELAY_MS


@pytest.mark.parametrize("text, word", [
    ("lose:0.1", "unknown kind"), ("drop.air:0.1", "unknown direction"),
    ("drop:lots", "not a number"), ("drop:1.5", "not a probability"), ("drop", "KIND"),
    ("flip:0.1:20", "only delay"), ("delay:0.1:-1", "outside"),
])
def test_bad_fault_is_a_value_error_naming_it(text, word):
    with pytest.raises(ValueError, match=word):
        parse_faults(text)


def test_seed_must_be_an_integer():
    assert parse_faults("", "42").seed == 42
    with pytest.raises(ValueError, match="seed"):
        parse_faults("", "x")


def test_sim_spec_takes_faults_and_seed_options():
    assert parse_sim_spec("sim:a?air=/tmp/s&faults=drop:0.1&seed=3") == ("a", "/tmp/s")
    plan = parse_sim_faults("sim:a?faults=drop:0.1,flip.host:0.2&seed=3")
    assert (plan.to_board.drop, plan.to_host.flip, plan.seed) == (0.1, 0.2, 3)
    assert parse_sim_faults("sim:a?air=/tmp/s") is None


def test_bad_fault_in_a_sim_spec_is_a_port_open_error():
    with pytest.raises(PortOpenError, match="unknown kind"):
        parse_sim_faults("sim:a?faults=melt:0.1")


def _stream(seed: int = 1, **rates) -> _Stream:
    plan = parse_faults(",".join(f"{k}:{v}" for k, v in rates.items()))
    return _Stream("host", plan.to_host, seed)


def _run(stream: _Stream, data: bytes, chunk: int) -> bytes:
    out = b""
    for i in range(0, len(data), chunk):
        out += b"".join(seg for _, seg in stream.apply(data[i:i + chunk], 0.0))
    return out


def test_same_seed_hits_the_same_bytes_whatever_the_chunking():
    data = bytes(range(1, 256)) * 40
    a = _run(_stream(7, drop=0.01, flip=0.01), data, 1000)
    b = _run(_stream(7, drop=0.01, flip=0.01), data, 37)
    assert a == b and a != data


def test_other_seed_hits_other_bytes():
    data = bytes(range(1, 256)) * 40
    assert _run(_stream(1, drop=0.01), data, 500) != _run(_stream(2, drop=0.01), data, 500)


def test_flip_inverts_exactly_one_bit_of_a_byte():
    data = bytes(200)
    s = _stream(3, flip=1.0)
    out = _run(s, data, 50)
    assert len(out) == len(data)
    assert all(bin(b).count("1") == 1 for b in out)


def test_delay_stalls_the_stream_without_reordering_it():
    s = _stream(5, delay=0.05)
    data = bytes(range(1, 201))
    segs = s.apply(data, 100.0)
    assert b"".join(seg for _, seg in segs) == data
    times = [t for t, _ in segs]
    assert times == sorted(times) and times[-1] == pytest.approx(100.0 + DEFAULT_DELAY_MS / 1000)


def test_damaged_frames_are_recorded_with_their_kind_and_number():
    frames = [encode_frame(cbor2.dumps([P.MSG_EVT, seq, P.EV_SCAN_DONE])) for seq in range(300)]
    frames += [encode_frame(cbor2.dumps([P.MSG_RSP, 9, 0, None]))]
    s = _stream(11, drop=0.02)
    out = _run(s, b"".join(frames), 64)
    got = [cbor2.loads(f)[1] for f in FrameDecoder().feed(out) if cbor2.loads(f)[0] == P.MSG_EVT]
    lost = set(range(300)) - set(got)
    assert lost and sorted(lost) == sorted(s.stats.damaged_event_seqs)


@pytest.fixture
def relayed(fake):
    """A FaultRelay in front of the fake board; relayed(plan) -> (relay, open Board)."""
    opened = []

    def make(text: str, seed: int = 1):
        relay = FaultRelay(fake.path, parse_faults(text, str(seed)))
        board = open_board(relay.path, timeout=5, handshake=False)
        opened.append((relay, board))
        return relay, board

    yield make
    for relay, board in opened:
        board.close()
        relay.close()


def test_request_lost_on_the_way_to_the_board_is_a_call_timeout(relayed):
    relay, board = relayed("drop.board:1.0")
    with pytest.raises(CallTimeout):
        board.call("echo", b"lost", timeout=0.5)


def test_response_lost_on_the_way_to_the_host_is_a_call_timeout(relayed, fake):
    relay, board = relayed("drop.host:1.0")
    with pytest.raises(CallTimeout):
        board.call("echo", b"lost", timeout=0.5)
    assert fake.wait_requests(1)           # the request reached the board; its answer did not come back


def test_clean_relay_passes_calls_and_events(relayed, fake):
    relay, board = relayed("")
    board.handshake()
    seen, cond = collect(board)
    fake.send_event(P.EV_SCAN_DONE)
    with cond:
        assert cond.wait_for(lambda: len(seen) == 1, WAIT_S)
    assert board.call("echo", b"ok") == b"ok"


def test_board_hanging_up_reaches_the_host_through_the_relay(relayed, fake):
    relay, board = relayed("")
    board.handshake()
    lost = threading.Event()
    board.add_lost_listener(lambda exc: lost.set())
    fake.unplug()
    assert lost.wait(WAIT_S)
    with pytest.raises(BoardLost):
        board.call("echo", b"x")
