"""bluetooth.BLE against a fake board: arguments, errors, tuple shapes, handler answers."""
import errno
import os
import stat

import pytest

import blebridge.micropython as bluetooth
from blebridge import protocol as P
from blebridge.micropython import BLE, UUID

CFG = P.CONSTANTS["config"]
ADDR_WIRE = bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66])       # LSB first, as on air
ADDR_MP = bytes([0x66, 0x55, 0x44, 0x33, 0x22, 0x11])         # MicroPython's order


# -- module ------------------------------------------------------------------------------------

def test_module_has_micropython_flag_constants():
    assert (bluetooth.FLAG_READ, bluetooth.FLAG_WRITE_NO_RESPONSE, bluetooth.FLAG_WRITE,
            bluetooth.FLAG_NOTIFY, bluetooth.FLAG_INDICATE) == (0x02, 0x04, 0x08, 0x10, 0x20)


def test_ble_of_one_board_is_one_object(board):
    assert BLE(board) is BLE(board)
    BLE(board).close()


def test_ble_has_the_methods_scripts_probe_for():
    for name in ("l2cap_connect", "gap_pair", "gap_passkey", "gattc_exchange_mtu", "gatts_set_buffer"):
        assert hasattr(BLE, name)


# -- errors ------------------------------------------------------------------------------------

def test_call_with_radio_off_raises_enodev(ble, board):
    board.fail("gap_advertise_start", "NOT_ACTIVE")
    with pytest.raises(OSError) as info:
        ble.gap_advertise(100_000, b"")
    assert info.value.errno == errno.ENODEV
    assert info.value.args[0] == errno.ENODEV
    assert "gap_advertise" in str(info.value) and "NOT_ACTIVE" in str(info.value)


def test_unknown_connection_raises_enotconn(ble, board):
    board.fail("gattc_read", "UNKNOWN_HANDLE")
    with pytest.raises(OSError) as info:
        ble.gattc_read(7, 3)
    assert info.value.errno == errno.ENOTCONN


def test_unknown_value_handle_on_gatts_write_raises_einval(ble, board):
    board.fail("gatts_write", "UNKNOWN_HANDLE")
    with pytest.raises(OSError) as info:
        ble.gatts_write(99, b"x")
    assert info.value.errno == errno.EINVAL


def test_errno_status_passes_through(ble, board):
    board.fail("gap_connect_cancel", "EALREADY")
    with pytest.raises(OSError) as info:
        ble.gap_connect(None)
    assert info.value.errno == errno.EALREADY


def test_cancel_with_no_connect_pending_is_ealready_as_on_nimble(ble, board):
    board.fail("gap_connect_cancel", "ENOENT")
    with pytest.raises(OSError) as info:
        ble.gap_connect(None)
    assert info.value.errno == errno.EALREADY


def test_wrong_argument_type_is_a_type_error(ble):
    with pytest.raises(TypeError):
        ble.gatts_write("1", b"x")
    with pytest.raises(TypeError):
        ble.gatts_write(1, 5)


def test_too_long_local_value_raises_enomem(ble):
    with pytest.raises(OSError) as info:
        ble.gatts_write(1, bytes(P.LIMITS["MAX_ATTR_LEN"] + 1))
    assert info.value.errno == errno.ENOMEM


# -- config ------------------------------------------------------------------------------------

def test_config_mac_is_addr_type_and_msb_first_address(ble, board):
    board.results["config_get"] = lambda key: [1, ADDR_WIRE] if key == CFG["MAC"] else None
    assert ble.config("mac") == (1, ADDR_MP)


def test_config_gap_name_is_bytes(ble, board):
    board.results["config_get"] = lambda key: "GAP_NAME"
    assert ble.config("gap_name") == b"GAP_NAME"


def test_config_set_sends_each_key(ble, board):
    ble.config(gap_name="x", mtu=256, bond=1, io=3)
    sets = {c[1]: c[2] for c in board.calls if c[0] == "config_set"}
    assert sets == {CFG["GAP_NAME"]: "x", CFG["MTU"]: 256, CFG["BOND"]: True, CFG["IO"]: 3}


def test_config_unknown_param_is_a_value_error(ble):
    with pytest.raises(ValueError, match="unknown config param"):
        ble.config("colour")
    with pytest.raises(ValueError, match="unknown config param"):
        ble.config(colour=1)


def test_config_needs_exactly_one_query(ble):
    with pytest.raises(TypeError, match="must query one param"):
        ble.config()
    with pytest.raises(TypeError, match="can't specify pos and kw args"):
        ble.config("mtu", mtu=1)


def test_config_rxbuf_out_of_range_is_a_value_error(ble):
    with pytest.raises(ValueError):
        ble.config(rxbuf=8)


def test_pairing_config_before_active_is_applied_on_activation(board):
    board.fail("config_set", "NOT_ACTIVE")
    ble = BLE(board)
    try:
        ble.config(mitm=True, le_secure=True, bond=False)
        board.results.pop("config_set")
        ble.active(True)
        sets = {c[1]: c[2] for c in board.calls[-4:] if c[0] == "config_set"}
        assert sets[CFG["MITM"]] is True and sets[CFG["LE_SECURE"]] is True and sets[CFG["BOND"]] is False
    finally:
        ble.close()


def test_config_mtu_before_active_raises_enodev(board):
    board.fail("config_set", "NOT_ACTIVE")
    ble = BLE(board)
    try:
        with pytest.raises(OSError) as info:
            ble.config(mtu=100)
        assert info.value.errno == errno.ENODEV
    finally:
        ble.close()


def test_irq_handler_turns_on_read_requests(ble, board):
    ble.irq(lambda e, d: None)
    assert ("config_set", CFG["READ_REQUEST"], True) in board.calls


def test_irq_rejects_non_callable(ble):
    with pytest.raises(ValueError, match="invalid handler"):
        ble.irq(5)


# -- GAP ---------------------------------------------------------------------------------------

def test_advertise_without_data_reuses_previous_data(ble, board):
    ble.gap_advertise(20_000, b"\x02\x01\x06", resp_data=b"r")
    ble.gap_advertise(30_000)
    assert board.calls[-1][:4] == ("gap_advertise_start", 30_000, b"\x02\x01\x06", b"r")


def test_non_connectable_advertising_is_scannable(ble, board):
    ble.gap_advertise(100_000, b"x", connectable=False)
    _, _, _, _, connectable, scannable, extended, _ = board.calls[-1]
    assert (connectable, scannable, extended) == (False, True, False)


def test_advertise_none_stops(ble, board):
    ble.gap_advertise(None)
    assert board.calls[-1] == ("gap_advertise_stop",)


def test_scan_none_stops(ble, board):
    ble.gap_scan(None)
    assert board.calls[-1] == ("gap_scan_stop",)


def test_scan_passes_duty_cycle_and_active(ble, board):
    ble.gap_scan(2000, 30000, 30000, True)
    assert board.calls[-1] == ("gap_scan_start", 2000, 30000, 30000, True, False)


def test_connect_sends_address_lsb_first_with_default_scan_time(ble, board):
    ble.gap_connect(0, ADDR_MP)
    assert board.calls[-1] == ("gap_connect", 0, ADDR_WIRE, 2000, None, None)


def test_connect_none_cancels(ble, board):
    ble.gap_connect(None)
    assert board.calls[-1] == ("gap_connect_cancel",)


def test_connect_with_one_non_none_argument_is_a_type_error(ble):
    with pytest.raises(TypeError, match="invalid addr"):
        ble.gap_connect(0)


def test_connect_with_short_address_is_a_value_error(ble):
    with pytest.raises(ValueError, match="invalid addr"):
        ble.gap_connect(0, b"\x01\x02")


def test_disconnect_unknown_connection_returns_false(ble, board):
    board.fail("gap_disconnect", "ENOTCONN")
    assert ble.gap_disconnect(5) is False


def test_disconnect_returns_true(ble):
    assert ble.gap_disconnect(5) is True


def test_passkey_with_unknown_action_raises_einval(ble):
    with pytest.raises(OSError) as info:
        ble.gap_passkey(0, 1, 0)
    assert info.value.errno == errno.EINVAL


# -- GATT server -------------------------------------------------------------------------------

SVC = UUID("A5A5A5A5-FFFF-9999-1111-5A5A5A5A5A5A")
CHR1 = UUID("00000000-1111-2222-3333-444444444444")
CHR2 = UUID(0x2A37)
DSC = UUID("00000000-1111-2222-3333-555555555555")


def _register_result(services):
    # handles as a board would hand them out: service, decl, value, cccd for notify, descriptors
    out, h = [], 1
    for _uuid, chars in services:
        svc_handle, h = h, h + 1
        rows = []
        for _cu, flags, _ml, _v, dscs in chars:
            decl, value = h, h + 1
            h += 2
            cccd = 0
            if flags & 0x30:
                cccd, h = h, h + 1
            dh = list(range(h, h + len(dscs)))
            h += len(dscs)
            rows.append([decl, value, cccd, dh])
        out.append([svc_handle, rows])
    return out


def test_register_services_returns_value_handles_per_service(ble, board):
    board.results["gatts_register_services"] = _register_result
    handles = ble.gatts_register_services([
        (SVC, ((CHR1, bluetooth.FLAG_READ | bluetooth.FLAG_NOTIFY, ((DSC, bluetooth.FLAG_READ),)),
               (CHR2, bluetooth.FLAG_WRITE))),
        (UUID(0x180D), ()),
    ])
    assert handles == ((3, 5, 7), ())


def test_register_services_sends_uuids_flags_and_default_buffers(ble, board):
    board.results["gatts_register_services"] = _register_result
    ble.gatts_register_services([(SVC, ((CHR2, bluetooth.FLAG_READ, ((DSC, 1),)),))])
    wire = board.calls[-1][1]
    assert wire == [[bytes(SVC), [[bytes(CHR2), 2, 20, b"", [[bytes(DSC), 1, 20, b""]]]]]]


def test_register_service_with_non_uuid_is_a_value_error(ble):
    with pytest.raises(ValueError, match="invalid service UUID"):
        ble.gatts_register_services([("180D", ())])


def test_register_characteristic_of_wrong_length_is_a_value_error(ble):
    with pytest.raises(ValueError, match="invalid characteristic tuple"):
        ble.gatts_register_services([(SVC, ((CHR1,),))])


def test_local_write_longer_than_the_buffer_grows_it_first(ble, board):
    board.results["gatts_register_services"] = _register_result
    ((h,),) = ble.gatts_register_services([(SVC, ((CHR2, bluetooth.FLAG_READ),))])
    assert ble.gatts_write(h, bytes(100)) == 100
    assert board.calls[-2] == ("gatts_set_buffer", h, 100, False)
    assert board.calls[-1] == ("gatts_write", h, bytes(100), False)


def test_local_write_within_the_buffer_does_not_resize(ble, board):
    board.results["gatts_register_services"] = _register_result
    ((h,),) = ble.gatts_register_services([(SVC, ((CHR2, bluetooth.FLAG_READ),))])
    ble.gatts_write(h, "periph0", True)
    assert board.calls[-1] == ("gatts_write", h, b"periph0", True)
    assert "gatts_set_buffer" not in board.methods()


def test_gatts_read_asks_the_board(ble, board):
    board.results["gatts_read"] = b"value"
    assert ble.gatts_read(3) == b"value"


def test_notify_sends_none_for_the_local_value(ble, board):
    ble.gatts_notify(0, 3)
    assert board.calls[-1] == ("gatts_notify", 0, 3, None)


def test_notify_unknown_connection_raises_enotconn(ble, board):
    board.results["gatts_register_services"] = _register_result
    ((h,),) = ble.gatts_register_services([(SVC, ((CHR2, bluetooth.FLAG_NOTIFY),))])
    board.fail("gatts_notify", "UNKNOWN_HANDLE")
    with pytest.raises(OSError) as info:
        ble.gatts_notify(9, h, b"x")
    assert info.value.errno == errno.ENOTCONN


def test_notify_unknown_value_handle_raises_einval(ble, board):
    board.results["gatts_register_services"] = _register_result
    ble.gatts_register_services([(SVC, ((CHR2, bluetooth.FLAG_NOTIFY),))])
    board.fail("gatts_notify", "UNKNOWN_HANDLE")
    with pytest.raises(OSError) as info:
        ble.gatts_notify(0, 999, b"x")
    assert info.value.errno == errno.EINVAL


def test_set_buffer_passes_length_and_append(ble, board):
    ble.gatts_set_buffer(5, 100, True)
    assert board.calls[-1] == ("gatts_set_buffer", 5, 100, True)


# -- GATT client -------------------------------------------------------------------------------

def test_write_mode_other_than_0_or_1_raises_einval(ble):
    with pytest.raises(OSError) as info:
        ble.gattc_write(0, 3, b"x", 2)
    assert info.value.errno == errno.EINVAL


def test_write_passes_mode(ble, board):
    ble.gattc_write(0, 3, "central0", 1)
    assert board.calls[-1] == ("gattc_write", 0, 3, b"central0", 1)


def test_discover_services_with_non_uuid_is_a_type_error(ble):
    with pytest.raises(TypeError):
        ble.gattc_discover_services(0, 0x180D)


def test_discover_services_sends_uuid_bytes(ble, board):
    ble.gattc_discover_services(0, UUID(0x180D))
    assert board.calls[-1] == ("gattc_discover_services", 0, b"\x0d\x18")


# -- events ------------------------------------------------------------------------------------

class Recorder:
    def __init__(self, ret=None):
        self.events = []
        self.ret = ret

    def __call__(self, event, data):
        self.events.append((event, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)))
        self.raw = data
        return self.ret(event, data) if callable(self.ret) else self.ret


def test_central_connect_tuple_has_msb_first_address(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("CENTRAL_CONNECT", 0, 1, ADDR_WIRE)
    assert rec.events == [(1, (0, 1, ADDR_MP))]


def test_event_buffers_are_read_only_memoryviews_released_after_the_handler(ble, board):
    seen = {}

    def handler(event, data):
        seen["readonly"] = data[2].readonly
        seen["mv"] = data[2]

    ble.irq(handler)
    board.emit("CENTRAL_CONNECT", 0, 0, ADDR_WIRE)
    assert seen["readonly"] is True
    with pytest.raises(ValueError):
        bytes(seen["mv"])


def test_disconnect_tuple_drops_the_reason(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("PERIPHERAL_DISCONNECT", 0xFFFF, 0, ADDR_WIRE, 2)
    assert rec.events == [(8, (0xFFFF, 0, ADDR_MP))]


def test_scan_result_tuple(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("SCAN_RESULT", 0, ADDR_WIRE, 2, -40, b"\x02\x01\x06")
    assert rec.events == [(5, (0, ADDR_MP, 2, -40, b"\x02\x01\x06"))]


def test_scan_done_tuple_is_empty(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("SCAN_DONE")
    assert rec.events == [(6, ())]


def test_gatts_write_tuple_is_connection_and_handle(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("GATTS_WRITE", 0, 3, b"central0")
    assert rec.events == [(3, (0, 3))]


def test_gatts_read_in_the_write_handler_returns_the_written_value(ble, board):
    got = []
    ble.irq(lambda e, d: got.append(ble.gatts_read(d[-1])))
    board.results["gatts_read"] = b"a later value"
    board.emit("GATTS_WRITE", 0, 3, b"central0")
    assert got == [b"central0"]


def test_service_result_carries_a_uuid(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("GATTC_SERVICE_RESULT", 0, 1, 5, b"\x0d\x18")
    assert rec.events == [(9, (0, 1, 5, UUID(0x180D)))]


def test_characteristic_results_carry_end_handles(ble, board):
    rec = Recorder()
    ble.irq(rec)
    ble.gattc_discover_characteristics(0, 1, 0xFFFF)
    board.emit("GATTC_CHARACTERISTIC_RESULT", 0, 10, 11, 0x12, b"\x01\x00")
    board.emit("GATTC_CHARACTERISTIC_RESULT", 0, 13, 14, 0x02, b"\x02\x00")
    board.emit("GATTC_CHARACTERISTIC_DONE", 0, 0)
    assert rec.events == [(11, (0, 12, 11, 0x12, UUID(1))), (11, (0, 0xFFFF, 14, 0x02, UUID(2))),
                          (12, (0, 0))]


def test_characteristic_filter_keeps_end_handles_of_unfiltered_neighbours(ble, board):
    rec = Recorder()
    ble.irq(rec)
    ble.gattc_discover_characteristics(0, 1, 20, UUID(1))
    assert board.calls[-1] == ("gattc_discover_characteristics", 0, 1, 20, None)
    board.emit("GATTC_CHARACTERISTIC_RESULT", 0, 10, 11, 0x12, b"\x01\x00")
    board.emit("GATTC_CHARACTERISTIC_RESULT", 0, 13, 14, 0x02, b"\x02\x00")
    board.emit("GATTC_CHARACTERISTIC_DONE", 0, 0)
    assert rec.events == [(11, (0, 12, 11, 0x12, UUID(1))), (12, (0, 0))]


def test_second_characteristic_discovery_on_a_connection_raises_ebusy(ble):
    ble.gattc_discover_characteristics(0, 1, 0xFFFF)
    with pytest.raises(OSError) as info:
        ble.gattc_discover_characteristics(0, 1, 0xFFFF)
    assert info.value.errno == errno.EBUSY


def test_descriptor_result_tuple(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("GATTC_DESCRIPTOR_RESULT", 0, 12, b"\x02\x29")
    assert rec.events == [(13, (0, 12, UUID(0x2902)))]


@pytest.mark.parametrize("name,code", [("GATTC_READ_RESULT", 15), ("GATTC_NOTIFY", 18), ("GATTC_INDICATE", 19)])
def test_data_events_carry_a_memoryview(ble, board, name, code):
    rec = Recorder()
    ble.irq(rec)
    board.emit(name, 0, 3, b"periph0")
    assert rec.events == [(code, (0, 3, b"periph0"))]
    assert isinstance(rec.raw[2], memoryview)


@pytest.mark.parametrize("name,code,fields", [
    ("GATTC_SERVICE_DONE", 10, (0, 0)), ("GATTC_READ_DONE", 16, (0, 3, 0)),
    ("GATTC_WRITE_DONE", 17, (0, 3, 0)), ("GATTS_INDICATE_DONE", 20, (0, 3, 0)),
    ("L2CAP_SEND_READY", 26, (0, 64, 0)),
    ("CONNECTION_UPDATE", 27, (0, 24, 0, 400, 0)), ("PASSKEY_ACTION", 31, (0, 4, 123456)),
])
def test_plain_events_keep_their_fields(ble, board, name, code, fields):
    rec = Recorder()
    ble.irq(rec)
    board.emit(name, *fields)
    assert rec.events == [(code, fields)]


def test_encryption_update_flags_are_ints(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("ENCRYPTION_UPDATE", 0, True, False, True, 16)
    assert rec.events == [(28, (0, 1, 0, 1, 16))]
    assert type(rec.raw[1]) is int


def test_read_request_answer_is_the_handler_return_value(ble, board):
    ble.irq(lambda e, d: 0x05 if e == 4 else None)
    board.emit("GATTS_READ_REQUEST", 77, 0, 3)
    assert board.replies == [(77, 5)]


def test_read_request_without_answer_is_allowed(ble, board):
    ble.irq(lambda e, d: None)
    board.emit("GATTS_READ_REQUEST", 78, 0, 3)
    assert board.replies == [(78, 0)]


def test_l2cap_accept_answer_is_the_handler_return_value(ble, board):
    rec = Recorder(ret=lambda e, d: 1)
    ble.irq(rec)
    board.emit("L2CAP_ACCEPT", 9, 0, 64, 22, 450, 450)
    assert rec.events == [(22, (0, 64, 22, 450, 450))]
    assert board.replies == [(9, 1)]


def test_get_secret_answer_is_the_handler_return_value(ble, board):
    rec = Recorder(ret=lambda e, d: b"secret" if e == 29 else None)
    ble.irq(rec)
    board.emit("GET_SECRET", 5, 1, 0, b"key")
    assert rec.events == [(29, (1, 0, b"key"))]
    assert board.replies == [(5, b"secret")]


def test_set_secret_answer_is_the_handler_truthiness(ble, board):
    ble.irq(lambda e, d: True)
    board.emit("SET_SECRET", 6, 2, b"key", b"value")
    assert board.replies == [(6, True)]


def test_unanswered_secrets_are_kept_in_a_user_only_file(ble, board, tmp_path):
    ble.irq(lambda e, d: None)
    board.emit("SET_SECRET", 1, 2, b"peer", b"ltk")
    board.emit("GET_SECRET", 2, 2, 0, b"peer")
    board.emit("GET_SECRET", 3, 2, 0, None)
    board.emit("GET_SECRET", 4, 2, 1, None)
    assert board.replies == [(1, True), (2, b"ltk"), (3, b"ltk"), (4, None)]
    files = list((tmp_path / "secrets").iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "secrets").st_mode) == 0o700


def test_deleting_a_secret_removes_it(ble, board):
    ble.irq(lambda e, d: None)
    board.emit("SET_SECRET", 1, 2, b"peer", b"ltk")
    board.emit("SET_SECRET", 2, 2, b"peer", None)
    board.emit("GET_SECRET", 3, 2, 0, b"peer")
    assert board.replies[-1] == (3, None)


def test_handler_exception_is_printed_and_disables_the_handler(ble, board, capsys):
    calls = []

    def handler(event, data):
        calls.append(event)
        raise RuntimeError("boom")

    ble.irq(handler)
    board.emit("SCAN_DONE")
    board.emit("SCAN_DONE")
    err = capsys.readouterr().err
    assert "Unhandled exception in IRQ callback handler" in err and "boom" in err
    assert calls == [6]


# -- L2CAP -------------------------------------------------------------------------------------

def test_l2cap_send_on_unknown_channel_raises_einval(ble):
    with pytest.raises(OSError) as info:
        ble.l2cap_send(0, 64, b"x")
    assert info.value.errno == errno.EINVAL


def test_l2cap_send_over_peer_mtu_raises_einval(ble, board):
    board.emit("L2CAP_CONNECT", 0, 64, 22, 450, 100)
    with pytest.raises(OSError) as info:
        ble.l2cap_send(0, 64, bytes(101))
    assert info.value.errno == errno.EINVAL


def test_l2cap_send_returns_false_when_stalled(ble, board):
    board.emit("L2CAP_CONNECT", 0, 64, 22, 450, 450)
    board.results["l2cap_send"] = False
    assert ble.l2cap_send(0, 64, b"data") is False


def test_l2cap_recvinto_reads_buffered_data_in_pieces(ble, board):
    ble.irq(lambda e, d: None)
    board.emit("L2CAP_CONNECT", 0, 64, 22, 450, 450)
    board.emit("L2CAP_RECV", 0, 64, b"hello")
    board.emit("L2CAP_RECV", 0, 64, b" world")
    assert ble.l2cap_recvinto(0, 64, None) == 11
    buf = bytearray(4)
    assert ble.l2cap_recvinto(0, 64, buf) == 4 and buf == b"hell"
    big = bytearray(20)
    assert ble.l2cap_recvinto(0, 64, big) == 7 and big[:7] == b"o world"
    assert ble.l2cap_recvinto(0, 64, big) == 0


def test_l2cap_recvinto_needs_a_writable_buffer(ble, board):
    board.emit("L2CAP_CONNECT", 0, 64, 22, 450, 450)
    with pytest.raises(TypeError):
        ble.l2cap_recvinto(0, 64, b"readonly")


def test_l2cap_recv_tuple_is_connection_and_cid(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("L2CAP_CONNECT", 0, 64, 22, 450, 450)
    board.emit("L2CAP_RECV", 0, 64, b"x")
    assert rec.events[-1] == (25, (0, 64))


def test_l2cap_listen_raises_mtu_to_32(ble, board):
    ble.l2cap_listen(22, 10)
    assert board.calls[-1] == ("l2cap_listen", 22, 32)


def test_l2cap_listen_clamps_mtu_to_board_limit(ble, board):
    ble.l2cap_listen(22, 5000)
    assert board.calls[-1] == ("l2cap_listen", 22, 1024)


def test_closed_channel_is_gone_once_drained(ble, board):
    board.emit("L2CAP_CONNECT", 0, 64, 22, 450, 450)
    board.emit("L2CAP_RECV", 0, 64, b"ab")
    board.emit("L2CAP_DISCONNECT", 0, 64, 22, 0)
    assert ble.l2cap_recvinto(0, 64, bytearray(8)) == 2
    with pytest.raises(OSError) as info:
        ble.l2cap_recvinto(0, 64, bytearray(8))
    assert info.value.errno == errno.EINVAL


def test_disconnect_forgets_the_connections_channels(ble, board):
    board.emit("L2CAP_CONNECT", 3, 64, 22, 450, 450)
    board.emit("CENTRAL_DISCONNECT", 3, 0, ADDR_WIRE, 0x13)
    with pytest.raises(OSError):
        ble.l2cap_send(3, 64, b"x")
    assert ble._channels == {}


def test_every_mtu_exchange_is_reported(ble, board):
    rec = Recorder()
    ble.irq(rec)
    board.emit("MTU_EXCHANGED", 0, 256)
    board.emit("MTU_EXCHANGED", 0, 256)
    assert rec.events == [(21, (0, 256)), (21, (0, 256))]


def test_descriptor_discovery_starts_after_the_given_handle(ble, board):
    ble.gattc_discover_descriptors(0, 11, 14)
    assert board.calls[-1] == ("gattc_discover_descriptors", 0, 12, 14, None)


def test_refused_l2cap_connect_is_retried_while_the_peer_may_still_listen(ble, board):
    rec = Recorder()
    ble.irq(rec)
    ble.l2cap_connect(0, 22, 450)
    board.emit("L2CAP_DISCONNECT", 0, 0, 22, 2)
    assert board.methods().count("l2cap_connect") == 2
    board.emit("L2CAP_CONNECT", 0, 64, 22, 450, 450)
    assert [e for e, _ in rec.events] == [23]


def test_refused_l2cap_connect_is_reported_after_the_retry_window(ble, board, monkeypatch):
    import blebridge.micropython.ble as mod
    monkeypatch.setattr(mod, "L2CAP_CONNECT_RETRY_S", 0.0)
    rec = Recorder()
    ble.irq(rec)
    ble.l2cap_connect(0, 22, 450)
    board.emit("L2CAP_DISCONNECT", 0, 0, 22, 2)
    assert rec.events == [(24, (0, 0, 22, 2))]


def test_ble_for_a_port_opens_the_board_again_after_close(monkeypatch):
    import blebridge
    from blebridge.micropython import BLE
    from fakeboard import FakeBoard
    opened = []

    def fake_open_board(spec, *a, **kw):
        b = FakeBoard()
        b.active = False
        opened.append(b)
        return b
    monkeypatch.setattr(blebridge, "open_board", fake_open_board)
    first = BLE(port="fake:closed-then-reopened")
    first.close()
    second = BLE(port="fake:closed-then-reopened")
    try:
        assert second is not first and len(opened) == 2
    finally:
        second.close()


# -- a script's waits and batches of events ------------------------------------------------------

def _poll_until(flag, limit_s=5.0):
    """A board script's wait loop: machine.idle() until the flag is set."""
    import time
    from blebridge.micropython import runtime
    deadline = time.monotonic() + limit_s
    while not flag and time.monotonic() < deadline:
        runtime.idle()
    assert flag, "the handler never ran"


def test_idle_returns_after_the_whole_batch_not_between_its_events(ble, board, monkeypatch):
    import threading
    from blebridge.micropython import runtime
    # However long the emitting thread is kept off the CPU between the two events, the wait
    # must not give up before the second (the limit only bounds a handler that never ends).
    monkeypatch.setattr(runtime, "SETTLE_LIMIT_S", 60.0)
    seen, flag, done_when_flag_seen = [], [], []
    ble.irq(lambda event, data: (seen.append(event), flag.append(1) if event == 15 else None))
    batch = [("GATTC_READ_RESULT", 0, 3, b"v"), ("GATTC_READ_DONE", 0, 3, 0)]
    t = threading.Thread(target=board.emit_batch, args=(batch, 0.03))
    t.start()
    _poll_until(flag)
    done_when_flag_seen.append(16 in seen)
    t.join()
    assert done_when_flag_seen == [True]


def test_events_counted_before_the_handler_was_registered_do_not_hold_waits(board, tmp_path, monkeypatch):
    import time
    from blebridge.micropython import runtime
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    board.events_received = 7          # dispatched before this BLE object listened
    obj = BLE(board)
    try:
        board.active = True
        obj.irq(Recorder())
        board.emit("GATTC_WRITE_DONE", 0, 3, 0)
        # With a 60 s settle limit, a wait held by the uncounted events would take 60 s.
        monkeypatch.setattr(runtime, "SETTLE_LIMIT_S", 60.0)
        t0 = time.monotonic()
        runtime.idle()
        assert time.monotonic() - t0 < 30
        assert not runtime.ACTIVITY.busy()
    finally:
        obj.close()


def test_idle_gives_up_waiting_for_a_handler_that_never_returns(ble, board):
    import threading
    import time
    from blebridge.micropython import runtime
    release = threading.Event()
    entered = threading.Event()
    ble.irq(lambda event, data: (entered.set(), release.wait(5)))
    t = threading.Thread(target=board.emit, args=("GATTC_WRITE_DONE", 0, 3, 0))
    t.start()
    try:
        assert entered.wait(30)
        t0 = time.monotonic()
        runtime.idle()
        waited = time.monotonic() - t0
        assert runtime.SETTLE_LIMIT_S <= waited < 4.0     # gave up, long before release (5 s)
    finally:
        release.set()
        t.join()


def test_closing_a_board_mid_batch_releases_waits(ble, board):
    from blebridge.micropython import runtime
    ble.irq(Recorder())
    board.events_received += 1        # one more event on its way, never delivered: closed first
    board.emit("GATTC_WRITE_DONE", 0, 3, 0)
    assert runtime.ACTIVITY.busy()
    ble.close()
    assert not runtime.ACTIVITY.busy()


def test_link_gap_prints_one_warning_naming_the_frames_lost(ble, board, capsys):
    board.lose_frames(3)
    err = capsys.readouterr().err
    assert err.count("lost on the link") == 1 and "3 event frames lost" in err


def test_link_gap_counters_are_readable_by_the_script(ble, board):
    board.lose_frames(2)
    board.lose_frames(1)
    assert (ble.link_gaps, ble.link_frames_lost) == (2, 3)


def test_closed_ble_stops_listening_for_link_gaps(ble, board):
    ble.close()
    board.lose_frames(1)
    assert ble.link_gaps == 0
