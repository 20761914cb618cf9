"""Typed events (blebridge.events) and typed calls (blebridge.calls) follow the schema."""
from __future__ import annotations

import asyncio
import inspect
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "protocol"))
import gen  # noqa: E402

from blebridge import calls, events  # noqa: E402
from blebridge.errors import ProtocolError  # noqa: E402
from blebridge.rpc import Event  # noqa: E402

# One valid value of each schema type.
SAMPLE = {"uint": 7, "int": -40, "bool": True, "bytes": b"\x01\x02", "str": "text",
          "uuid": b"\x0d\x18", "addr": b"\x01\x02\x03\x04\x05\x06", "any": {"k": [1, 2]}}


def sample_fields(event: dict) -> tuple:
    return tuple(SAMPLE[gen.parse_field(f)[1]] for f in event["fields"])


def event_ids(events_: list) -> list:
    return [e["name"] for e in events_]


SCHEMA = gen.load()


class Recorder:
    """A board that records what each call would send."""

    def __init__(self) -> None:
        self.sent: list = []

    def call(self, method: str, *args, timeout=None):
        self.sent.append((method, args, timeout))
        return "result"

    async def acall(self, method: str, *args, timeout=None):
        self.sent.append((method, args, timeout))
        return "async result"

    def call_nowait(self, method: str, *args, timeout=None):
        self.sent.append((method, args, timeout))
        return "future"


@pytest.mark.parametrize("event", SCHEMA["event"], ids=event_ids(SCHEMA["event"]))
def test_every_event_round_trips_through_its_named_tuple(event):
    fields = sample_fields(event)
    typed = events.typed_event(event["code"], fields)
    assert type(typed).__name__ == gen.class_name(event["name"])
    assert typed._fields == tuple(f[0] for f in event["fields"])
    assert tuple(typed) == fields


def test_event_classes_are_named_after_the_events():
    assert events.EVENT_TYPES[3] is events.GattsWrite
    assert events.EVENT_TYPES[5] is events.ScanResult


def test_rpc_event_exposes_its_typed_tuple():
    ev = Event(3, "GATTS_WRITE", (1, 9, b"hi"))
    assert ev.typed == events.GattsWrite(conn=1, value_handle=9, data=b"hi")


def test_rpc_event_keeps_its_raw_fields():
    ev = Event(3, "GATTS_WRITE", (1, 9, b"hi"))
    assert (ev.code, ev.name, ev.fields) == (3, "GATTS_WRITE", (1, 9, b"hi"))


def test_event_with_too_few_fields_raises_protocol_error_naming_them():
    with pytest.raises(ProtocolError, match=r"PERIPHERAL_DISCONNECT \(8\): expected 4 fields "
                                            r"\(conn, addr_type, addr, reason\), got 3"):
        events.typed_event(8, (0, 0, b"\x00" * 6))


def test_event_with_too_many_fields_raises_protocol_error():
    with pytest.raises(ProtocolError, match="expected 0 fields"):
        events.typed_event(6, (1,))


def test_event_field_of_wrong_type_raises_protocol_error_naming_the_field():
    with pytest.raises(ProtocolError, match=r"GATTS_WRITE \(3\): field data: expected bytes, got int"):
        events.typed_event(3, (0, 3, 5))


def test_bool_in_an_integer_field_raises_protocol_error():
    with pytest.raises(ProtocolError, match="field conn: expected uint, got bool"):
        events.typed_event(3, (True, 3, b"x"))


def test_negative_value_in_a_uint_field_raises_protocol_error():
    with pytest.raises(ProtocolError, match="field conn: expected uint"):
        events.typed_event(3, (-1, 3, b"x"))


def test_address_of_wrong_length_raises_protocol_error():
    with pytest.raises(ProtocolError, match="field addr: expected addr"):
        events.typed_event(1, (0, 0, b"\x01\x02"))


def test_null_in_a_required_field_raises_protocol_error():
    with pytest.raises(ProtocolError, match="field data: expected bytes, got NoneType"):
        events.typed_event(3, (0, 3, None))


def test_null_in_an_optional_field_is_kept():
    assert events.typed_event(29, (1, 2, 0, None)).key is None


def test_unknown_event_code_raises_protocol_error():
    with pytest.raises(ProtocolError, match="unknown event code"):
        events.typed_event(250, ())


def test_malformed_rpc_event_raises_protocol_error_on_typed_access_only():
    ev = Event(3, "GATTS_WRITE", (0,))
    assert ev.fields == (0,)
    with pytest.raises(ProtocolError):
        ev.typed


@pytest.mark.parametrize("method", SCHEMA["method"], ids=[m["name"] for m in SCHEMA["method"]])
def test_every_method_has_a_typed_function_with_the_schema_parameters(method):
    fn = calls.CALLS[method["name"]]
    params = list(inspect.signature(fn).parameters.values())
    assert params[0].name == "board" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert [p.name for p in params[1:]] == [f[0] for f in method["args"]] + ["timeout"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    required = gen.min_args(method["args"])
    for i, p in enumerate(params[1:-1]):
        assert (p.default is inspect.Parameter.empty) == (i < required), p.name


@pytest.mark.parametrize("method", SCHEMA["method"], ids=[m["name"] for m in SCHEMA["method"]])
def test_every_typed_call_sends_its_arguments_in_schema_order(method):
    board = Recorder()
    values = {f[0]: (i, f[0]) for i, f in enumerate(method["args"])}
    assert calls.CALLS[method["name"]](board, **values, timeout=2.5) == "result"
    assert board.sent == [(method["name"], tuple(values.values()), 2.5)]


def test_omitted_trailing_optional_arguments_are_left_off():
    board = Recorder()
    calls.gap_scan_start(board, duration_ms=0, interval_us=1280, window_us=11250, active=False,
                         filter_duplicates=False)
    assert board.sent == [("gap_scan_start", (0, 1280, 11250, False, False), None)]


def test_omitted_optional_argument_before_a_given_one_is_sent_as_null():
    board = Recorder()
    calls.gap_scan_start(board, duration_ms=0, interval_us=1280, window_us=11250, active=False,
                         filter_duplicates=False, prefix=b"\x02")
    assert board.sent == [("gap_scan_start", (0, 1280, 11250, False, False, None, b"\x02"), None)]


def test_optional_argument_given_as_none_is_sent_as_null():
    board = Recorder()
    calls.ble_active(board, on=None)
    assert board.sent == [("ble_active", (None,), None)]


def test_typed_call_without_a_required_argument_raises_type_error():
    with pytest.raises(TypeError):
        calls.gatts_read(Recorder())


def test_typed_call_refuses_positional_arguments():
    with pytest.raises(TypeError):
        calls.gatts_read(Recorder(), 3)


def test_async_typed_call_awaits_acall():
    board = Recorder()
    result = asyncio.run(calls.gatts_read_async(board, value_handle=3, timeout=1.0))
    assert (result, board.sent) == ("async result", [("gatts_read", (3,), 1.0)])


def test_nowait_typed_call_returns_the_future_of_call_nowait():
    board = Recorder()
    result = calls.reply_nowait(board, token=5, value=None)
    assert (result, board.sent) == ("future", [("reply", (5, None), None)])


def test_every_method_has_async_and_nowait_variants():
    assert set(calls.ASYNC_CALLS) == set(calls.NOWAIT_CALLS) == set(calls.CALLS) == \
        {m["name"] for m in SCHEMA["method"]}


def test_generated_typed_modules_carry_the_do_not_edit_header():
    for path in (gen.OUT_EVENTS, gen.OUT_CALLS):
        assert "generated by protocol/gen.py from protocol/schema.toml; do not edit" in \
            path.read_text().splitlines()[0]


def test_drift_check_covers_the_typed_modules():
    assert {gen.OUT_EVENTS, gen.OUT_CALLS} <= set(gen.outputs(SCHEMA))
