/* Dispatch of requests through the fake port: handles, radio state, port errors, results. */
#include <errno.h>
#include <string.h>

#include "bb_core.h"
#include "bb_proto.h"
#include "fake_port.h"
#include "tb.h"
#include "tb_msg.h"
#include "tests.h"

static const bb_addr_t peer = {BB_ADDR_TYPE_PUBLIC, {0x11, 0x22, 0x33, 0x44, 0x55, 0x66}};

static void echo_returns_data_unchanged(void)
{
    tb_boot();
    tb_req(1, BB_M_ECHO, "y", "\x00\x01\x02xyz", (size_t)6);
    tb_drain();
    const uint8_t *p;
    TB_CHECK_EQ(tb_rsp(1)->status, BB_STATUS_OK);
    TB_CHECK_EQ(tb_result_bytes(tb_rsp(1), &p), 6);
    TB_CHECK(memcmp(p, "\x00\x01\x02xyz", 6) == 0);
}

static void many_requests_in_flight_each_get_their_response(void)
{
    tb_boot();
    fp.write_limit = 7;  /* the transport takes a few bytes at a time */
    static uint8_t wire[200 * 40];
    size_t wl = 0;
    for (uint32_t id = 100; id < 300; id++) {
        uint8_t cbor[64];
        uint8_t data[4] = {(uint8_t)id, (uint8_t)(id >> 8), 0xEE, 0};
        size_t n = tb_cbor_req(cbor, sizeof(cbor), id, BB_M_ECHO, "y", data, (size_t)4);
        wl += bb_frame_encode(cbor, n, wire + wl, sizeof(wire) - wl);
    }
    bb_core_rx(wire, wl);  /* all 200 requests arrive before the board sends anything */
    tb_drain();
    TB_CHECK_EQ(tb_out.nrsp, 200);
    for (uint32_t id = 100; id < 300; id++) {
        const tb_rsp_t *r = tb_rsp(id);
        const uint8_t *p;
        TB_CHECK(r != NULL);
        TB_CHECK_EQ(r->status, BB_STATUS_OK);
        TB_CHECK_EQ(tb_result_bytes(r, &p), 4);
        TB_CHECK_EQ(p[0] | (p[1] << 8), id);
    }
    TB_CHECK_EQ(bb_core.n.responses_dropped, 0);
}

static void handshake_reports_boot_id_caps_and_radio_addr_while_inactive(void)
{
    tb_boot();
    tb_req(2, BB_M_HANDSHAKE, "uu", 1, 0);
    tb_drain();
    const tb_rsp_t *r = tb_rsp(2);
    TB_CHECK_EQ(r->status, BB_STATUS_OK);
    zcbor_state_t st[8];
    bb_cbor_decode_init(st, 8, r->result, r->result_len);
    TB_CHECK(zcbor_unordered_map_start_decode(st));
    uint32_t boot_id = 0;
    TB_CHECK(zcbor_search_key_tstr_lit(st, "boot_id") && zcbor_uint32_decode(st, &boot_id));
    TB_CHECK_EQ(boot_id, 0xB007);
    struct zcbor_string s;
    TB_CHECK(zcbor_search_key_tstr_lit(st, "addr") && zcbor_bstr_decode(st, &s));
    TB_CHECK_EQ(s.len, 6);
    TB_CHECK_EQ(s.value[5], fp.addr.addr[5]);
    TB_CHECK(zcbor_search_key_tstr_lit(st, "port") && zcbor_tstr_decode(st, &s));
    TB_CHECK(s.len == 4 && memcmp(s.value, "fake", 4) == 0);
    TB_CHECK(zcbor_search_key_tstr_lit(st, "caps") && zcbor_unordered_map_start_decode(st));
    uint32_t max_mtu = 0;
    TB_CHECK(zcbor_search_key_tstr_lit(st, "max_mtu") && zcbor_uint32_decode(st, &max_mtu));
    TB_CHECK_EQ(max_mtu, 247);
    TB_CHECK(zcbor_search_key_tstr_lit(st, "roles") && zcbor_list_start_decode(st));
    TB_CHECK_EQ(st->elem_count, 3);
    TB_CHECK_EQ(fp_count("addr_get"), 1);
}

static void handshake_reports_radio_address_when_active(void)
{
    tb_boot();
    tb_activate();
    tb_req(2, BB_M_HANDSHAKE, "uu", 1, 0);
    tb_drain();
    zcbor_state_t st[8];
    bb_cbor_decode_init(st, 8, tb_rsp(2)->result, tb_rsp(2)->result_len);
    struct zcbor_string s;
    TB_CHECK(zcbor_unordered_map_start_decode(st));
    TB_CHECK(zcbor_search_key_tstr_lit(st, "addr") && zcbor_bstr_decode(st, &s));
    TB_CHECK_EQ(s.value[5], 0xC6);
}

static void radio_methods_need_active_radio(void)
{
    tb_boot();
    tb_req(3, BB_M_GAP_SCAN_START, "uuubb", 0, 1, 1, 0, 0);
    tb_req(4, BB_M_GAP_ADVERTISE_STOP, "");
    tb_drain();
    TB_CHECK_EQ(tb_rsp(3)->status, BB_STATUS_NOT_ACTIVE);
    TB_CHECK_EQ(tb_rsp(4)->status, BB_STATUS_NOT_ACTIVE);
    TB_CHECK_EQ(fp_count("gap_scan_start"), 0);
}

static void port_errno_becomes_status(void)
{
    tb_boot();
    tb_activate();
    fp.fail_name = "gap_advertise_stop";
    fp.fail_rc = -EBUSY;
    tb_req(5, BB_M_GAP_ADVERTISE_STOP, "");
    tb_drain();
    TB_CHECK_EQ(tb_rsp(5)->status, BB_STATUS_EBUSY);
    TB_CHECK_EQ(bb_core.n.port_errors, 1);
}

static void unknown_conn_is_unknown_handle(void)
{
    tb_boot();
    tb_activate();
    tb_req(6, BB_M_GAP_DISCONNECT, "u", 5);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(6)->status, BB_STATUS_UNKNOWN_HANDLE);
    TB_CHECK_EQ(bb_core.n.unknown_handle, 1);
    TB_CHECK_EQ(fp_count("gap_disconnect"), 0);
}

static void connected_conn_reaches_the_port(void)
{
    tb_boot();
    tb_activate();
    bb_on_central_connect(5, &peer);
    tb_req(7, BB_M_GAP_DISCONNECT, "u", 5);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(7)->status, BB_STATUS_OK);
    TB_CHECK_EQ(fp_find("gap_disconnect")->a[0], 5);
}

static void disconnected_conn_is_forgotten(void)
{
    tb_boot();
    tb_activate();
    bb_on_peripheral_connect(9, &peer);
    bb_on_peripheral_disconnect(9, &peer, 0x13);
    tb_req(8, BB_M_GATTC_EXCHANGE_MTU, "u", 9);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(8)->status, BB_STATUS_UNKNOWN_HANDLE);
}

static void l2cap_send_checks_channel_and_reports_stall(void)
{
    tb_boot();
    tb_activate();
    bb_on_central_connect(1, &peer);
    tb_req(9, BB_M_L2CAP_SEND, "uuy", 1, 0x40, "ab", (size_t)2);
    bb_on_l2cap_connect(1, 0x40, 0x80, 512, 256);
    tb_req(10, BB_M_L2CAP_SEND, "uuy", 1, 0x40, "ab", (size_t)2);
    fp.l2cap_send_rc = 1;
    tb_req(11, BB_M_L2CAP_SEND, "uuy", 1, 0x40, "cd", (size_t)2);
    fp.l2cap_send_rc = -EAGAIN;
    tb_req(12, BB_M_L2CAP_SEND, "uuy", 1, 0x40, "ef", (size_t)2);
    tb_drain();
    bool v = false;
    TB_CHECK_EQ(tb_rsp(9)->status, BB_STATUS_UNKNOWN_HANDLE);
    TB_CHECK(tb_result_bool(tb_rsp(10), &v) && v);
    TB_CHECK(tb_result_bool(tb_rsp(11), &v) && !v);
    TB_CHECK_EQ(tb_rsp(12)->status, BB_STATUS_EAGAIN);
}

static void config_set_mtu_out_of_range_is_einval(void)
{
    tb_boot();
    tb_req(13, BB_M_CONFIG_SET, "uu", BB_CONFIG_MTU, 22);
    tb_req(14, BB_M_CONFIG_SET, "uu", BB_CONFIG_MTU, BB_MAX_ATTR_LEN + 4);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(13)->status, BB_STATUS_EINVAL);
    TB_CHECK_EQ(tb_rsp(14)->status, BB_STATUS_EINVAL);
    TB_CHECK_EQ(fp_count("config_apply"), 1); /* only bb_core_init's: refused values never reach the port */
}

static void config_set_applies_whole_config_to_port(void)
{
    tb_boot();
    tb_req(15, BB_M_CONFIG_SET, "us", BB_CONFIG_GAP_NAME, "sensor-1");
    tb_req(16, BB_M_CONFIG_SET, "uu", BB_CONFIG_MTU, 185);
    tb_req(17, BB_M_CONFIG_GET, "u", BB_CONFIG_MTU);
    tb_drain();
    uint32_t mtu = 0;
    TB_CHECK_EQ(tb_rsp(15)->status, BB_STATUS_OK);
    TB_CHECK_EQ(fp.last_config.mtu, 185);
    TB_CHECK(strcmp(fp.last_config.gap_name, "sensor-1") == 0);
    TB_CHECK(tb_result_u32(tb_rsp(17), &mtu));
    TB_CHECK_EQ(mtu, 185);
}

static void config_set_wrong_value_type_is_bad_arg_type(void)
{
    tb_boot();
    tb_req(18, BB_M_CONFIG_SET, "uu", BB_CONFIG_BOND, 1);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(18)->status, BB_STATUS_BAD_ARG_TYPE);
}

static void config_set_mac_requires_static_random_address(void)
{
    tb_boot();
    tb_req(19, BB_M_CONFIG_SET, "uy", BB_CONFIG_MAC, "\1\2\3\4\5\x06", (size_t)6);
    tb_req(20, BB_M_CONFIG_SET, "uy", BB_CONFIG_MAC, "\1\2\3\4\5\xC6", (size_t)6);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(19)->status, BB_STATUS_EINVAL);
    TB_CHECK_EQ(tb_rsp(20)->status, BB_STATUS_OK);
    TB_CHECK_EQ(fp_find("addr_set_static")->data[5], 0xC6);
}

static void config_get_mac_returns_type_and_address(void)
{
    tb_boot();
    tb_activate();
    tb_req(21, BB_M_CONFIG_GET, "u", BB_CONFIG_MAC);
    tb_drain();
    zcbor_state_t st[4];
    bb_cbor_decode_init(st, 4, tb_rsp(21)->result, tb_rsp(21)->result_len);
    uint32_t type = 9;
    struct zcbor_string s;
    TB_CHECK(zcbor_list_start_decode(st) && zcbor_uint32_decode(st, &type) && zcbor_bstr_decode(st, &s));
    TB_CHECK_EQ(type, BB_ADDR_TYPE_RANDOM);
    TB_CHECK_EQ(s.len, 6);
    TB_CHECK_EQ(s.value[0], 1);
}

static void config_get_unknown_key_is_einval(void)
{
    tb_boot();
    tb_req(22, BB_M_CONFIG_GET, "u", 99);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(22)->status, BB_STATUS_EINVAL);
}

static void tx_power_accepts_negative_dbm(void)
{
    tb_boot();
    tb_req(23, BB_M_CONFIG_SET, "ui", BB_CONFIG_TX_POWER, -20);
    tb_req(24, BB_M_CONFIG_GET, "u", BB_CONFIG_TX_POWER);
    tb_drain();
    zcbor_state_t st[2];
    int32_t v = 0;
    bb_cbor_decode_init(st, 2, tb_rsp(24)->result, tb_rsp(24)->result_len);
    TB_CHECK(zcbor_int32_decode(st, &v));
    TB_CHECK_EQ(v, -20);
    TB_CHECK_EQ(fp.last_config.tx_power, -20);
}

static void diagnostics_counts_bad_requests(void)
{
    tb_boot();
    const uint8_t junk[] = {0x01};
    tb_rx_payload(junk, 1);
    tb_req(25, 222, "");
    tb_req(26, BB_M_DIAGNOSTICS, "");
    tb_drain();
    zcbor_state_t st[4];
    bb_cbor_decode_init(st, 4, tb_rsp(26)->result, tb_rsp(26)->result_len);
    uint32_t v = 0;
    TB_CHECK(zcbor_unordered_map_start_decode(st));
    TB_CHECK(zcbor_search_key_tstr_lit(st, "malformed") && zcbor_uint32_decode(st, &v));
    TB_CHECK_EQ(v, 1);
    TB_CHECK(zcbor_search_key_tstr_lit(st, "unknown_method") && zcbor_uint32_decode(st, &v));
    TB_CHECK_EQ(v, 1);
    TB_CHECK(zcbor_search_key_tstr_lit(st, "frames_rx") && zcbor_uint32_decode(st, &v));
    TB_CHECK_EQ(v, 3);
    TB_CHECK(zcbor_search_key_tstr_lit(st, "uptime_ms") && zcbor_uint32_decode(st, &v));
}

static void bench_events_answer_first_then_all_events_in_batches(void)
{
    tb_boot();
    tb_req(27, BB_M_BENCH_EVENTS, "uu", 50, 100);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(27)->status, BB_STATUS_OK);
    TB_CHECK_EQ(tb_evt_count(BB_EV_BENCH), 50);
    const tb_evt_t *first = tb_evt(BB_EV_BENCH);
    TB_CHECK(first->frame > 0);  /* frame 0 (after BOOT's) carried the response */
    for (unsigned i = 0, seq = 0; i < tb_out.nevt; i++) {
        const tb_evt_t *e = &tb_out.evt[i];
        if (e->code != BB_EV_BENCH) {
            continue;
        }
        const uint8_t *p;
        TB_CHECK_EQ(tb_field_u32(e, 0), seq);
        TB_CHECK_EQ(tb_field_bytes(e, 1, &p), 100);
        TB_CHECK_EQ(p[99], (uint8_t)(seq + 99));
        seq++;
    }
    TB_CHECK(tb_out.batches >= 4);
    TB_CHECK(tb_out.batches <= 6);  /* ~11 events of 106 bytes fit in one 1200-byte frame */
}

static uint32_t handshake_event_seq(uint32_t id)
{
    tb_req(id, BB_M_HANDSHAKE, "uu", BB_PROTO_MAJOR, BB_PROTO_MINOR);
    tb_drain();
    zcbor_state_t st[8];
    bb_cbor_decode_init(st, 8, tb_rsp(id)->result, tb_rsp(id)->result_len);
    uint32_t seq = 0xFFFFFFFF;   /* no such seq: the checks of the callers fail */
    if (!zcbor_unordered_map_start_decode(st) || !zcbor_search_key_tstr_lit(st, "event_seq")
        || !zcbor_uint32_decode(st, &seq)) {
        return 0xFFFFFFFF;
    }
    return seq;
}

static void event_frames_are_numbered_from_zero_without_gaps(void)
{
    tb_boot();
    tb_req(27, BB_M_BENCH_EVENTS, "uu", 50, 100);
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_BENCH), 50);
    TB_CHECK(tb_out.evt_frames >= 5);             /* BOOT's frame, then the batches */
    TB_CHECK_EQ(tb_out.seq_errors, 0);            /* 0, 1, 2, ... in the order they went out */
    TB_CHECK_EQ(tb_out.next_seq, tb_out.evt_frames);
}

static void handshake_reports_the_next_event_frame_seq(void)
{
    tb_boot();
    tb_drain();                                   /* BOOT went out in frame 0 */
    TB_CHECK_EQ(handshake_event_seq(2), 1);
    tb_req(3, BB_M_BENCH_EVENTS, "uu", 1, 4);
    tb_drain();
    TB_CHECK_EQ(handshake_event_seq(4), 2);
    TB_CHECK_EQ(tb_out.seq_errors, 0);
}

static void reset_keeps_counting_event_frames(void)
{
    tb_boot();
    tb_req(2, BB_M_BENCH_EVENTS, "uu", 1, 4);
    tb_drain();
    tb_req(3, BB_M_RESET, "");
    tb_req(4, BB_M_BENCH_EVENTS, "uu", 1, 4);
    tb_drain();
    TB_CHECK_EQ(tb_out.evt_frames, 3);
    TB_CHECK_EQ(tb_out.seq_errors, 0);            /* the host would see no gap across reset */
}

static void event_seq_wraps_to_zero_at_its_modulus(void)
{
    tb_boot();
    tb_drain();
    bb_core.event_seq = BB_EVENT_SEQ_MOD - 1;
    tb_out.next_seq = BB_EVENT_SEQ_MOD - 1;
    for (uint32_t id = 10; id < 13; id++) {
        tb_req(id, BB_M_BENCH_EVENTS, "uu", 1, 4);
        tb_drain();
    }
    TB_CHECK_EQ(tb_out.seq_errors, 0);
    TB_CHECK_EQ(tb_out.next_seq, 2);              /* 65535, 0, 1 went out */
}

static void bench_events_stop_when_transport_stalls_and_resume(void)
{
    tb_boot();
    tb_req(28, BB_M_BENCH_EVENTS, "uu", 300, 200);
    bb_core_poll();
    fp.write_stall = 1000000;
    for (int i = 0; i < 10; i++) {
        bb_core_poll();
    }
    TB_CHECK(bb_core_tx_pending());
    fp.write_stall = 0;
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_BENCH), 300);
}

static void reset_forgets_connections_and_turns_radio_off(void)
{
    tb_boot();
    tb_activate();
    bb_on_central_connect(3, &peer);
    tb_req(29, BB_M_RESET, "");
    tb_req(30, BB_M_BLE_ACTIVE, "n");
    tb_drain();
    bool on = true;
    TB_CHECK_EQ(tb_rsp(29)->status, BB_STATUS_OK);
    TB_CHECK(tb_result_bool(tb_rsp(30), &on) && !on);
    TB_CHECK(!bb_core_conn_known(3));
    TB_CHECK_EQ(fp_count("reset"), 1);
}

static void ble_active_calls_port_only_on_change(void)
{
    tb_boot();
    tb_activate();
    tb_activate();
    TB_CHECK_EQ(fp_count("ble_activate"), 1);
}

static void gap_connect_passes_peer_and_defaults(void)
{
    tb_boot();
    tb_activate();
    tb_req(31, BB_M_GAP_CONNECT, "uyunnnn", 1, peer.addr, (size_t)6, 2000);
    tb_drain();
    const fp_call_t *c = fp_find("gap_connect");
    TB_CHECK_EQ(tb_rsp(31)->status, BB_STATUS_OK);
    TB_CHECK_EQ(c->a[0], 1);
    TB_CHECK_EQ(c->a[1], 2000);
    TB_CHECK_EQ(c->a[2], 0);
    TB_CHECK_EQ(c->data[5], 0x66);
}

static void sec_encryption_state_returns_list(void)
{
    tb_boot();
    tb_activate();
    bb_on_central_connect(2, &peer);
    tb_req(32, BB_M_SEC_ENCRYPTION_STATE, "u", 2);
    tb_drain();
    zcbor_state_t st[4];
    bool enc = false, auth = true, bonded = false;
    uint32_t ks = 0;
    bb_cbor_decode_init(st, 4, tb_rsp(32)->result, tb_rsp(32)->result_len);
    TB_CHECK(zcbor_list_start_decode(st) && zcbor_bool_decode(st, &enc) && zcbor_bool_decode(st, &auth)
             && zcbor_bool_decode(st, &bonded) && zcbor_uint32_decode(st, &ks));
    TB_CHECK(enc && !auth && bonded);
    TB_CHECK_EQ(ks, 16);
}

static void core_never_nests_critical_sections(void)
{
    tb_boot();
    tb_activate();
    bb_on_central_connect(1, &peer);
    bb_on_l2cap_connect(1, 0x41, 0x80, 100, 100);
    bb_on_question_read(1, 1, 3);
    bb_on_gatts_write(1, 3, (const uint8_t *)"x", 1, 0);
    tb_req(33, BB_M_DIAGNOSTICS, "");
    tb_drain();
    TB_CHECK(!fp.critical_nested);
    TB_CHECK_EQ(fp.critical_depth, 0);
}

void run_dispatch_tests(void)
{
    TB_RUN(echo_returns_data_unchanged);
    TB_RUN(many_requests_in_flight_each_get_their_response);
    TB_RUN(handshake_reports_boot_id_caps_and_radio_addr_while_inactive);
    TB_RUN(handshake_reports_radio_address_when_active);
    TB_RUN(radio_methods_need_active_radio);
    TB_RUN(port_errno_becomes_status);
    TB_RUN(unknown_conn_is_unknown_handle);
    TB_RUN(connected_conn_reaches_the_port);
    TB_RUN(disconnected_conn_is_forgotten);
    TB_RUN(l2cap_send_checks_channel_and_reports_stall);
    TB_RUN(config_set_mtu_out_of_range_is_einval);
    TB_RUN(config_set_applies_whole_config_to_port);
    TB_RUN(config_set_wrong_value_type_is_bad_arg_type);
    TB_RUN(config_set_mac_requires_static_random_address);
    TB_RUN(config_get_mac_returns_type_and_address);
    TB_RUN(config_get_unknown_key_is_einval);
    TB_RUN(tx_power_accepts_negative_dbm);
    TB_RUN(diagnostics_counts_bad_requests);
    TB_RUN(bench_events_answer_first_then_all_events_in_batches);
    TB_RUN(event_frames_are_numbered_from_zero_without_gaps);
    TB_RUN(handshake_reports_the_next_event_frame_seq);
    TB_RUN(reset_keeps_counting_event_frames);
    TB_RUN(event_seq_wraps_to_zero_at_its_modulus);
    TB_RUN(bench_events_stop_when_transport_stalls_and_resume);
    TB_RUN(reset_forgets_connections_and_turns_radio_off);
    TB_RUN(ble_active_calls_port_only_on_change);
    TB_RUN(gap_connect_passes_peer_and_defaults);
    TB_RUN(sec_encryption_state_returns_list);
    TB_RUN(core_never_nests_critical_sections);
}
