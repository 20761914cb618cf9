"""Bad input against a real simulated board: every kind gets a named status and is counted.

Requests go out on a raw link (conftest.RawLink), bypassing the client's own checks. After
each one the board must still answer, exactly the matching diagnostics counter must have gone
up, and `blebridge info` must show that counter.

Statuses, as docs/design.md "Messages" and firmware/core/bb_msg.c define them:
  MALFORMED        not `[0, id, method, args...]` far enough to read the id: the response
                   carries a null id; once the id is read, a later defect keeps it
  UNKNOWN_METHOD   no such method number
  BAD_ARG_COUNT    outside the method's [argc_min, argc_max], or more than MAX_ARGS
  BAD_ARG_TYPE     wrong CBOR type, null for a non-optional argument, and a byte string of the
                   wrong size where a uuid (2/4/16 bytes) or addr (6 bytes) is due: their size
                   is part of the type, not a limit; nested shapes of gatts_register_services too
  VALUE_TOO_LARGE  over a schema `max` (bytes/str length, uint value), a uint over 2^32-1, and
                   limits inside `any` values (attribute max_len, GAP name)
  UNKNOWN_HANDLE   unknown conn, attribute value handle, L2CAP cid or question token
  NOT_ACTIVE       a radio call while the radio is off
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import cbor2
import pytest

from blebridge import BoardError, open_board
from blebridge import protocol as P
from e2e_link import RawLink, cli_board_counters, frame_of

S = P.STATUS
CFG = P.CONSTANTS["config"]
FLAG = P.CONSTANTS["flag"]
MAX_FRAME = P.LIMITS["MAX_FRAME"]
MAX_ATTR_LEN = P.LIMITS["MAX_ATTR_LEN"]

#: Board counters of rejected input; a bad request must move exactly one of them.
ERROR_COUNTERS = ("malformed", "unknown_method", "bad_args", "too_large", "unknown_handle",
                  "not_active", "crc_errors", "oversize")

BATTERY_SVC = b"\x0f\x18"
BATTERY_LEVEL = b"\x19\x2a"


def error_counters(d: dict[str, int]) -> dict[str, int]:
    return {k: d[k] for k in ERROR_COUNTERS}


def assert_counted(raw: RawLink, spec: str, before: dict[str, int], counter: str, by: int = 1) -> dict:
    """The board still answers; only ``counter`` of the error counters went up, by ``by``; the
    CLI shows it. Closes the raw link (the CLI opens the board next). Returns the counters."""
    raw.assert_answers_echo()
    after = raw.diagnostics()
    want = error_counters(before)
    want[counter] += by
    assert error_counters(after) == want
    raw.close()
    assert cli_board_counters(spec)[counter] == after[counter]
    return after


def req(rid: Any, method: Any, *args: Any) -> bytes:
    return cbor2.dumps([P.MSG_REQ, rid, method, *args])


def activate(raw: RawLink) -> None:
    assert raw.ok("ble_active", True) is True


def battery_services(chr_entry: Optional[list] = None) -> list:
    """gatts_register_services argument: one service with one characteristic."""
    entry = chr_entry if chr_entry is not None else [BATTERY_LEVEL, FLAG["READ"] | FLAG["NOTIFY"], 0, b"\x64", []]
    return [[BATTERY_SVC, [entry]]]


# -- MALFORMED ---------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    pytest.param(b"\xff\xfe\xfd", id="invalid-cbor-bytes"),
    pytest.param(b"\x85\x00", id="truncated-array"),
    pytest.param(cbor2.dumps({"id": 1, "method": 5}), id="cbor-map"),
    pytest.param(cbor2.dumps(5), id="cbor-integer"),
    pytest.param(cbor2.dumps("echo"), id="cbor-text"),
    pytest.param(cbor2.dumps([]), id="empty-array"),
    pytest.param(cbor2.dumps([P.MSG_RSP, 7, 5, b"x"]), id="kind-response"),
    pytest.param(cbor2.dumps([9, 7, 5, b"x"]), id="kind-unknown"),
    pytest.param(cbor2.dumps(["0", 7, 5, b"x"]), id="kind-text"),
    pytest.param(cbor2.dumps([P.MSG_REQ]), id="request-without-id"),
    pytest.param(req("7", 5, b"x"), id="id-text"),
    pytest.param(req(-7, 5, b"x"), id="id-negative"),
    pytest.param(req(1 << 32, 5, b"x"), id="id-over-32-bits"),
])
def test_unparseable_request_gets_malformed_with_null_id(raw: RawLink, spec: str, payload: bytes):
    before = raw.diagnostics()
    assert raw.request(payload, None) == [P.MSG_RSP, None, S["MALFORMED"], None]
    assert_counted(raw, spec, before, "malformed")


@pytest.mark.parametrize("payload", [
    pytest.param(req(77, "echo", b"x"), id="method-text"),
    pytest.param(cbor2.dumps([P.MSG_REQ, 77]), id="no-method"),
    pytest.param(req(77, 5, b"x") + b"\x01", id="trailing-bytes"),
    pytest.param(req(77, 5, b"x")[:-1], id="truncated-argument"),
])
def test_malformed_request_after_its_id_keeps_the_id(raw: RawLink, spec: str, payload: bytes):
    before = raw.diagnostics()
    assert raw.request(payload, 77) == [P.MSG_RSP, 77, S["MALFORMED"], None]
    assert_counted(raw, spec, before, "malformed")


def test_argument_nested_deeper_than_the_core_accepts_is_malformed(raw: RawLink, spec: str):
    # 200 nested arrays: a recursive skip without a bound would overflow a small stack.
    before = raw.diagnostics()
    deep = b"\x81" * 200 + b"\x00"
    head = b"".join(cbor2.dumps(x) for x in (P.MSG_REQ, 78, P.METHODS["reply"].id, 1))
    payload = b"\x85" + head + deep              # [0, 78, reply, 1, [[[...[0]...]]]]
    assert raw.request(payload, 78) == [P.MSG_RSP, 78, S["MALFORMED"], None]
    assert_counted(raw, spec, before, "malformed")


# -- UNKNOWN_METHOD, BAD_ARG_COUNT -------------------------------------------------------------

@pytest.mark.parametrize("method_id", [0, 99, 255, 1 << 40], ids=["0", "99", "255", "2^40"])
def test_unknown_method_number_gets_unknown_method(raw: RawLink, spec: str, method_id: int):
    before = raw.diagnostics()
    assert raw.call_id(method_id, b"x") == (S["UNKNOWN_METHOD"], None)
    assert_counted(raw, spec, before, "unknown_method")


@pytest.mark.parametrize("method, args", [
    pytest.param("echo", (), id="echo-too-few"),
    pytest.param("echo", (b"a", b"b"), id="echo-too-many"),
    pytest.param("gatts_write", (1, b"x"), id="gatts_write-too-few"),
    pytest.param("diagnostics", (1,), id="diagnostics-takes-none"),
    pytest.param("echo", (b"x",) * (P.LIMITS["MAX_ARGS"] + 1), id="more-than-MAX_ARGS"),
])
def test_wrong_argument_count_gets_bad_arg_count(raw: RawLink, spec: str, method: str, args: tuple):
    before = raw.diagnostics()
    assert raw.call(method, *args) == (S["BAD_ARG_COUNT"], None)
    assert_counted(raw, spec, before, "bad_args")


def test_trailing_optional_arguments_may_be_left_out(raw: RawLink):
    activate(raw)
    assert raw.call("gap_scan_start", 50, 30000, 30000, False, False) == (0, None)


# -- BAD_ARG_TYPE --------------------------------------------------------------------------------

@pytest.mark.parametrize("method, args", [
    pytest.param("gatts_read", ("1",), id="text-for-uint"),
    pytest.param("gatts_read", (-1,), id="negative-for-uint"),
    pytest.param("gatts_read", (1.0,), id="float-for-uint"),
    pytest.param("echo", (5,), id="int-for-bytes"),
    pytest.param("echo", ("text",), id="text-for-bytes"),
    pytest.param("echo", ([b"x"],), id="array-for-bytes"),
    pytest.param("echo", (None,), id="null-for-required-bytes"),
    pytest.param("ble_active", (1,), id="int-for-bool"),
    pytest.param("gap_passkey", (0, 0, b"\x01"), id="bytes-for-int"),
    pytest.param("gattc_discover_services", (0, b"abc"), id="uuid-of-3-bytes"),
    pytest.param("gattc_discover_services", (0, bytes(17)), id="uuid-of-17-bytes"),
    pytest.param("gattc_discover_services", (0, "180f"), id="text-for-uuid"),
    pytest.param("gap_connect", (0, b"12345", 1000), id="addr-of-5-bytes"),
    pytest.param("gap_connect", (0, b"1234567", 1000), id="addr-of-7-bytes"),
])
def test_wrong_argument_type_gets_bad_arg_type(raw: RawLink, spec: str, method: str, args: tuple):
    before = raw.diagnostics()
    assert raw.call(method, *args) == (S["BAD_ARG_TYPE"], None)
    assert_counted(raw, spec, before, "bad_args")


@pytest.mark.parametrize("services", [
    pytest.param({"uuid": BATTERY_SVC}, id="map-not-array"),
    pytest.param([BATTERY_SVC], id="service-not-array"),
    pytest.param([["180f", []]], id="service-uuid-text"),
    pytest.param([[b"\x0f\x18\x00", []]], id="service-uuid-3-bytes"),
    pytest.param(battery_services([BATTERY_LEVEL, "read", 0, b"", []]), id="flags-text"),
    pytest.param(battery_services([BATTERY_LEVEL, 2, -1, b"", []]), id="max_len-negative"),
    pytest.param(battery_services([BATTERY_LEVEL, 2, 0, "init", []]), id="value-text"),
    pytest.param(battery_services([BATTERY_LEVEL, 2, 0, b""]), id="descriptors-missing"),
    pytest.param(battery_services([BATTERY_LEVEL, 2, 0, b"", [[b"\x02\x29", 2, 0]]]), id="descriptor-short"),
    pytest.param(battery_services([BATTERY_LEVEL, 2, 0, b"", [], b"extra"]), id="characteristic-long"),
])
def test_wrong_shape_inside_gatts_register_services_gets_bad_arg_type(raw: RawLink, spec: str, services: Any):
    activate(raw)
    before = raw.diagnostics()
    assert raw.call("gatts_register_services", services) == (S["BAD_ARG_TYPE"], None)
    assert_counted(raw, spec, before, "bad_args")


def test_config_mac_of_5_bytes_gets_bad_arg_type_like_an_addr(raw: RawLink, spec: str):
    before = raw.diagnostics()
    assert raw.call("config_set", CFG["MAC"], b"\x01\x02\x03\x04\xc5") == (S["BAD_ARG_TYPE"], None)
    assert_counted(raw, spec, before, "bad_args")


def test_config_mac_of_6_bytes_not_static_random_gets_einval(raw: RawLink):
    assert raw.call("config_set", CFG["MAC"], b"\x01\x02\x03\x04\x05\x06") == (S["EINVAL"], None)


# -- VALUE_TOO_LARGE -----------------------------------------------------------------------------

@pytest.mark.parametrize("method, args", [
    pytest.param("echo", (bytes(MAX_ATTR_LEN + 1),), id="bytes-over-max"),
    pytest.param("config_set", (CFG["GAP_NAME"], "n" * (P.LIMITS["MAX_NAME"] + 1)), id="str-over-max"),
    pytest.param("bench_events", (1, P.LIMITS["MAX_BENCH_PAYLOAD"] + 1), id="uint-over-max"),
    pytest.param("gatts_read", (1 << 32,), id="uint-over-32-bits"),
    pytest.param("gap_passkey", (0, 0, 1 << 31), id="int-over-32-bits"),
])
def test_value_over_its_limit_gets_value_too_large(raw: RawLink, spec: str, method: str, args: tuple):
    before = raw.diagnostics()
    assert raw.call(method, *args) == (S["VALUE_TOO_LARGE"], None)
    assert_counted(raw, spec, before, "too_large")


def test_attribute_max_len_over_limit_gets_value_too_large(raw: RawLink, spec: str):
    activate(raw)
    before = raw.diagnostics()
    services = battery_services([BATTERY_LEVEL, FLAG["READ"], MAX_ATTR_LEN + 1, b"", []])
    assert raw.call("gatts_register_services", services) == (S["VALUE_TOO_LARGE"], None)
    assert_counted(raw, spec, before, "too_large")


def test_legacy_advertising_data_over_31_bytes_gets_value_too_large(raw: RawLink, spec: str):
    activate(raw)
    before = raw.diagnostics()
    adv = bytes(P.LIMITS["MAX_ADV_LEGACY"] + 1)
    assert raw.call("gap_advertise_start", 100000, adv, b"", True, True, False, 0) == (S["VALUE_TOO_LARGE"], None)
    assert_counted(raw, spec, before, "too_large")


# -- UNKNOWN_HANDLE ------------------------------------------------------------------------------

def test_unknown_value_handle_gets_unknown_handle(raw: RawLink, spec: str):
    activate(raw)
    raw.ok("gatts_register_services", battery_services())
    before = raw.diagnostics()
    assert raw.call("gatts_read", 0x7777) == (S["UNKNOWN_HANDLE"], None)
    assert_counted(raw, spec, before, "unknown_handle")


def test_unknown_question_token_gets_unknown_handle(raw: RawLink, spec: str):
    before = raw.diagnostics()
    assert raw.call("reply", 12345, 0) == (S["UNKNOWN_HANDLE"], None)
    assert_counted(raw, spec, before, "unknown_handle")


@pytest.mark.parametrize("method, args", [
    pytest.param("gap_disconnect", (7,), id="gap_disconnect"),
    pytest.param("gattc_read", (7, 3), id="gattc_read"),
    pytest.param("gatts_notify", (7, 3, b"x"), id="gatts_notify"),
    pytest.param("l2cap_send", (7, 0x40, b"x"), id="l2cap_send"),
])
def test_unknown_conn_handle_gets_unknown_handle(raw: RawLink, spec: str, method: str, args: tuple):
    activate(raw)
    before = raw.diagnostics()
    assert raw.call(method, *args) == (S["UNKNOWN_HANDLE"], None)
    assert_counted(raw, spec, before, "unknown_handle")


def test_unknown_l2cap_cid_on_a_live_connection_gets_unknown_handle(
        raw: RawLink, spec: str, start_board: Callable[..., Any]):
    peer_sim = start_board("-peer")
    peer = RawLink(peer_sim.pty)
    try:
        activate(peer)
        addr_type, addr = peer.ok("config_get", CFG["MAC"])
        peer.ok("gap_advertise_start", 100000, b"\x02\x01\x06", b"", True, True, False, 0)
        activate(raw)
        raw.ok("gap_connect", addr_type, addr, 2000)
        conn = raw.wait_event(P.EV_PERIPHERAL_CONNECT)[0]
        before = raw.diagnostics()
        assert raw.call("l2cap_send", conn, 0x40, b"x") == (S["UNKNOWN_HANDLE"], None)
        assert raw.call("l2cap_disconnect", conn, 0x41) == (S["UNKNOWN_HANDLE"], None)
        assert_counted(raw, spec, before, "unknown_handle", by=2)
    finally:
        peer.close()


# -- NOT_ACTIVE ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method, args", [
    pytest.param("gap_scan_start", (1000, 30000, 30000, True, False), id="gap_scan_start"),
    pytest.param("gap_advertise_start", (100000, b"", b"", True, True, False, 0), id="gap_advertise_start"),
    pytest.param("gap_connect", (0, bytes(6), 1000), id="gap_connect"),
    pytest.param("gatts_register_services", (battery_services(),), id="gatts_register_services"),
    pytest.param("gattc_read", (0, 3), id="gattc_read"),
    pytest.param("l2cap_listen", (0x80, 256), id="l2cap_listen"),
])
def test_radio_call_while_inactive_gets_not_active(raw: RawLink, spec: str, method: str, args: tuple):
    before = raw.diagnostics()
    assert raw.call(method, *args) == (S["NOT_ACTIVE"], None)
    assert_counted(raw, spec, before, "not_active")


# -- Frames --------------------------------------------------------------------------------------

def test_crc_corrupted_frame_is_counted_and_the_next_request_works(raw: RawLink, spec: str):
    before = raw.diagnostics()
    frame = bytearray(frame_of(req(5, P.METHODS["echo"].id, b"lost")))
    frame[3] ^= 0x40               # a data byte: COBS stays valid, the CRC no longer matches
    raw.write(bytes(frame))
    after = assert_counted(raw, spec, before, "crc_errors")
    assert after["garbage_bytes"] == before["garbage_bytes"] + len(frame) - 1


def test_text_between_frames_is_counted_as_garbage_and_skipped(raw: RawLink, spec: str):
    before = raw.diagnostics()
    text = b"boot: blebridge sim v0.1\r\nrandom noise \xff\xfe\r\n"
    raw.write(text + b"\x00")
    raw.assert_answers_echo()
    after = raw.diagnostics()
    assert after["garbage_bytes"] == before["garbage_bytes"] + len(text)
    assert error_counters(after) == error_counters(before)
    raw.close()
    assert cli_board_counters(spec)["garbage_bytes"] == after["garbage_bytes"]


def test_garbage_glued_to_a_frame_loses_only_that_frame(raw: RawLink):
    rid_lost, rid_next = 41, 42
    raw.write(b"noise" + frame_of(req(rid_lost, P.METHODS["echo"].id, b"a"))
              + frame_of(req(rid_next, P.METHODS["echo"].id, b"b")))
    assert raw.wait_response(rid_next) == [P.MSG_RSP, rid_next, 0, b"b"]
    raw.pump(0.2)
    assert all(r[1] != rid_lost for r in raw.responses)


def test_frame_longer_than_max_frame_is_counted_and_the_next_request_works(raw: RawLink, spec: str):
    before = raw.diagnostics()
    big = frame_of(req(6, P.METHODS["echo"].id, bytes(range(256)) * 6))   # ~1.5 KB of CBOR
    assert len(big) > MAX_FRAME + 4
    raw.write(big)
    after = assert_counted(raw, spec, before, "oversize")
    assert after["garbage_bytes"] == before["garbage_bytes"] + len(big) - 1


def test_endless_run_without_delimiter_is_counted_once_and_the_next_request_works(raw: RawLink, spec: str):
    before = raw.diagnostics()
    run = bytes(range(1, 256)) * 400                                        # 102 kB, no 0x00
    raw.write(run + b"\x00")
    after = assert_counted(raw, spec, before, "oversize")
    assert after["garbage_bytes"] == before["garbage_bytes"] + len(run)


def echo_request_of_size(rid: int, size: int) -> bytes:
    """An echo request of exactly ``size`` CBOR bytes (its data is over the echo limit)."""
    payload = req(rid, P.METHODS["echo"].id, bytes(size - 7))   # 4 bytes of head, 3 of bstr head
    assert len(payload) == size
    return payload


def test_frame_of_exactly_max_frame_bytes_is_decoded(raw: RawLink):
    before = raw.diagnostics()
    assert raw.request(echo_request_of_size(9, MAX_FRAME), 9)[2] == S["VALUE_TOO_LARGE"]
    assert raw.diagnostics()["oversize"] == before["oversize"]


def test_frame_one_byte_over_max_frame_is_oversize(raw: RawLink, spec: str):
    before = raw.diagnostics()
    raw.write(frame_of(echo_request_of_size(10, MAX_FRAME + 1)))
    assert_counted(raw, spec, before, "oversize")
    assert all(r[1] != 10 for r in raw.responses)


# -- Through the client API ---------------------------------------------------------------------

def test_board_error_names_status_and_method(spec: str):
    with open_board(spec) as board:
        with pytest.raises(BoardError) as ei:
            board.call("gatts_read", 0x7777)
    e = ei.value
    assert (e.status, e.status_name, e.method, e.errno) == (S["UNKNOWN_HANDLE"], "UNKNOWN_HANDLE", "gatts_read", None)
    assert "gatts_read" in str(e) and "UNKNOWN_HANDLE" in str(e)


def test_board_error_for_not_active_names_status_and_method(spec: str):
    with open_board(spec) as board:
        with pytest.raises(BoardError) as ei:
            board.call("gap_scan_start", 1000, 30000, 30000, True, False)
    e = ei.value
    assert (e.status_name, e.method) == ("NOT_ACTIVE", "gap_scan_start")
    assert "gap_scan_start" in str(e) and "NOT_ACTIVE" in str(e)


def test_board_error_for_bad_arg_type_names_status_and_method(spec: str):
    # The client checks counts and lengths, not CBOR types: the board's answer reaches the caller.
    with open_board(spec) as board:
        with pytest.raises(BoardError) as ei:
            board.call("echo", "text, not bytes")
    e = ei.value
    assert (e.status_name, e.method) == ("BAD_ARG_TYPE", "echo")
    assert "echo" in str(e) and "BAD_ARG_TYPE" in str(e)
