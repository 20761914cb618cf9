/* Local GATT database: registration, handles, attribute value pool. */
#include <errno.h>
#include <string.h>

#include "bb_core.h"
#include "bb_gatts.h"
#include "bb_proto.h"
#include "fake_port.h"
#include "tb.h"
#include "tb_msg.h"
#include "tests.h"
#include "zcbor_encode.h"

static const bb_addr_t peer = {BB_ADDR_TYPE_PUBLIC, {1, 1, 1, 1, 1, 1}};

/* One service 0x180D: chr A (READ|NOTIFY, max_len a_max, value "ab", descriptor 0x2901
 * (max_len 10, "x")), then `extra` characteristics (READ|WRITE, max_len extra_max). */
static size_t services(uint8_t *out, size_t cap, uint32_t a_flags, uint32_t a_max, unsigned extra,
                       uint32_t extra_max)
{
    ZCBOR_STATE_E(st, 6, out, cap, 0);
    bool ok = zcbor_list_start_encode(st, 1) && zcbor_list_start_encode(st, 2)
              && zcbor_bstr_encode_ptr(st, "\x0D\x18", 2) && zcbor_list_start_encode(st, 64)
              && zcbor_list_start_encode(st, 5) && zcbor_bstr_encode_ptr(st, "\x37\x2A", 2)
              && zcbor_uint32_put(st, a_flags) && zcbor_uint32_put(st, a_max)
              && zcbor_bstr_encode_ptr(st, "ab", 2) && zcbor_list_start_encode(st, 1)
              && zcbor_list_start_encode(st, 4) && zcbor_bstr_encode_ptr(st, "\x01\x29", 2)
              && zcbor_uint32_put(st, BB_FLAG_READ) && zcbor_uint32_put(st, 10)
              && zcbor_bstr_encode_ptr(st, "x", 1) && zcbor_list_end_encode(st, 4)
              && zcbor_list_end_encode(st, 1) && zcbor_list_end_encode(st, 5);
    for (unsigned i = 0; ok && i < extra; i++) {
        ok = zcbor_list_start_encode(st, 5) && zcbor_bstr_encode_ptr(st, "\x38\x2A", 2)
             && zcbor_uint32_put(st, BB_FLAG_READ | BB_FLAG_WRITE) && zcbor_uint32_put(st, extra_max)
             && zcbor_bstr_encode_ptr(st, "", 0) && zcbor_list_start_encode(st, 0)
             && zcbor_list_end_encode(st, 0) && zcbor_list_end_encode(st, 5);
    }
    ok = ok && zcbor_list_end_encode(st, 64) && zcbor_list_end_encode(st, 2) && zcbor_list_end_encode(st, 1);
    return ok ? (size_t)(st->payload - out) : 0;
}

/* Register and return chr A's value handle (0 on failure). */
static uint16_t register_a(uint32_t a_flags, uint32_t a_max, unsigned extra, uint32_t extra_max)
{
    static uint8_t svc[1100];
    size_t n = services(svc, sizeof(svc), a_flags, a_max, extra, extra_max);
    tb_req(500, BB_M_GATTS_REGISTER_SERVICES, "r", svc, n);
    tb_drain();
    if (tb_rsp(500) == NULL || tb_rsp(500)->status != BB_STATUS_OK) {
        return 0;
    }
    return bb_gatts_db.chrs[0].value_handle;
}

static size_t read_value(uint32_t id, uint16_t h, const uint8_t **p)
{
    tb_req(id, BB_M_GATTS_READ, "u", h);
    tb_drain();
    return tb_result_bytes(tb_rsp(id), p);
}

static void register_services_answers_handle_structure(void)
{
    tb_boot();
    tb_activate();
    TB_CHECK(register_a(BB_FLAG_READ | BB_FLAG_NOTIFY, 0, 1, 4) != 0);
    /* fake port: svc 10; chr A decl 11, value 12, cccd 13, dsc 14; chr B decl 15, value 16 */
    zcbor_state_t st[10];
    uint32_t v[8];
    const tb_rsp_t *r = tb_rsp(500);
    bb_cbor_decode_init(st, 10, r->result, r->result_len);
    TB_CHECK(zcbor_list_start_decode(st) && zcbor_list_start_decode(st) && zcbor_uint32_decode(st, &v[0])
             && zcbor_list_start_decode(st) && zcbor_list_start_decode(st)
             && zcbor_uint32_decode(st, &v[1]) && zcbor_uint32_decode(st, &v[2])
             && zcbor_uint32_decode(st, &v[3]) && zcbor_list_start_decode(st)
             && zcbor_uint32_decode(st, &v[4]) && zcbor_list_end_decode(st) && zcbor_list_end_decode(st)
             && zcbor_list_start_decode(st) && zcbor_uint32_decode(st, &v[5])
             && zcbor_uint32_decode(st, &v[6]) && zcbor_uint32_decode(st, &v[7]));
    TB_CHECK_EQ(v[0], 10);
    TB_CHECK_EQ(v[1], 11);
    TB_CHECK_EQ(v[2], 12);
    TB_CHECK_EQ(v[3], 13);
    TB_CHECK_EQ(v[4], 14);
    TB_CHECK_EQ(v[6], 16);
    TB_CHECK_EQ(v[7], 0);
}

static void register_services_needs_active_radio(void)
{
    tb_boot();
    TB_CHECK_EQ(register_a(BB_FLAG_READ, 0, 0, 0), 0);
    TB_CHECK_EQ(tb_rsp(500)->status, BB_STATUS_NOT_ACTIVE);
}

static void too_many_characteristics_is_enomem(void)
{
    tb_boot();
    tb_activate();
    TB_CHECK_EQ(register_a(BB_FLAG_READ, 0, BB_MAX_CHRS, 1), 0);
    TB_CHECK_EQ(tb_rsp(500)->status, BB_STATUS_ENOMEM);
    TB_CHECK_EQ(fp_count("gatts_register"), 0);
}

static void attribute_pool_exhaustion_is_enomem(void)
{
    tb_boot();
    tb_activate();
    /* 10 x 512 bytes > BB_ATTR_POOL_BYTES */
    TB_CHECK_EQ(register_a(BB_FLAG_READ, 0, 10, BB_MAX_ATTR_LEN), 0);
    TB_CHECK_EQ(tb_rsp(500)->status, BB_STATUS_ENOMEM);
}

static void max_len_over_limit_is_value_too_large(void)
{
    tb_boot();
    tb_activate();
    TB_CHECK_EQ(register_a(BB_FLAG_READ, BB_MAX_ATTR_LEN + 1, 0, 0), 0);
    TB_CHECK_EQ(tb_rsp(500)->status, BB_STATUS_VALUE_TOO_LARGE);
}

static void malformed_service_structure_is_bad_arg_type(void)
{
    tb_boot();
    tb_activate();
    const uint8_t not_services[] = {0x81, 0x01};  /* [1] */
    tb_req(501, BB_M_GATTS_REGISTER_SERVICES, "r", not_services, sizeof(not_services));
    tb_drain();
    TB_CHECK_EQ(tb_rsp(501)->status, BB_STATUS_BAD_ARG_TYPE);
}

static void initial_value_is_readable(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ, 0, 0, 0);
    const uint8_t *p;
    TB_CHECK_EQ(read_value(1, h, &p), 2);
    TB_CHECK(memcmp(p, "ab", 2) == 0);
}

static void unregistered_handle_is_unknown_handle(void)
{
    tb_boot();
    tb_req(2, BB_M_GATTS_READ, "u", 12);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(2)->status, BB_STATUS_UNKNOWN_HANDLE);
}

static void default_buffer_is_20_bytes_when_max_len_is_0(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ, 0, 0, 0);
    uint16_t len = 0, cap = 0;
    TB_CHECK(bb_core_gatts_value(h, &len, &cap) != NULL);
    TB_CHECK_EQ(cap, BB_DEFAULT_ATTR_LEN);
    TB_CHECK_EQ(len, 2);
}

static void peer_write_is_truncated_to_buffer(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ, 4, 0, 0);
    bb_on_gatts_write(1, h, (const uint8_t *)"abcdefgh", 8, 0);
    tb_drain();
    const uint8_t *p;
    TB_CHECK_EQ(read_value(3, h, &p), 4);
    TB_CHECK(memcmp(p, "abcd", 4) == 0);
    const tb_evt_t *e = tb_evt(BB_EV_GATTS_WRITE);
    TB_CHECK_EQ(tb_field_bytes(e, 2, &p), 4);
}

static void append_mode_appends_peer_writes_and_read_clears(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ, 0, 0, 0);
    tb_req(4, BB_M_GATTS_SET_BUFFER, "uub", h, 8, 1);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(4)->status, BB_STATUS_OK);
    bb_on_gatts_write(1, h, (const uint8_t *)"abc", 3, 0);
    bb_on_gatts_write(1, h, (const uint8_t *)"defgh", 5, 0);
    bb_on_gatts_write(1, h, (const uint8_t *)"ijk", 3, 0);  /* buffer full: cut */
    const uint8_t *p;
    TB_CHECK_EQ(read_value(5, h, &p), 8);
    TB_CHECK(memcmp(p, "abcdefgh", 8) == 0);
    TB_CHECK_EQ(read_value(6, h, &p), 0);
}

static void append_write_refused_by_full_queue_is_not_kept(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ, 0, 0, 0);
    tb_req(4, BB_M_GATTS_SET_BUFFER, "uub", h, 64, 1);
    tb_drain();
    static uint8_t data[BB_MAX_L2CAP_SDU];
    /* Fill the reliable ring: big events, then the smallest, so not even a 3-byte write fits. */
    while (bb_on_l2cap_recv(1, 0x40, data, sizeof(data)) == 0) {
    }
    while (bb_on_l2cap_recv(1, 0x40, data, 1) == 0) {
    }
    TB_CHECK_EQ(bb_on_gatts_write(1, h, (const uint8_t *)"abc", 3, 0), -BB_STATUS_ENOMEM);
    tb_drain();
    /* The port delivers the held-back write again: it lands once. */
    TB_CHECK_EQ(bb_on_gatts_write(1, h, (const uint8_t *)"abc", 3, 0), 0);
    const uint8_t *p;
    TB_CHECK_EQ(read_value(5, h, &p), 3);
    TB_CHECK(memcmp(p, "abc", 3) == 0);
}

static void local_write_longer_than_buffer_grows_it(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ, 4, 0, 0);
    static uint8_t big[100];
    memset(big, 'z', sizeof(big));
    tb_req(7, BB_M_GATTS_WRITE, "uyb", h, big, sizeof(big), 0);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(7)->status, BB_STATUS_OK);
    const uint8_t *p;
    TB_CHECK_EQ(read_value(8, h, &p), 100);
    TB_CHECK_EQ(fp_find("gatts_value_changed")->a[0], h);
}

static void local_write_beyond_pool_is_enomem(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ, 4, 7, BB_MAX_ATTR_LEN);
    static uint8_t big[BB_MAX_ATTR_LEN];
    tb_req(9, BB_M_GATTS_WRITE, "uyb", h, big, sizeof(big), 0);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(9)->status, BB_STATUS_ENOMEM);
}

static void fixed_length_write_of_other_length_is_einval(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ | BB_FLAG_FIXED_LENGTH, 4, 0, 0);
    const uint8_t *p;
    TB_CHECK_EQ(read_value(10, h, &p), 4);  /* "ab" zero-padded to max_len */
    tb_req(11, BB_M_GATTS_WRITE, "uyb", h, "abc", (size_t)3, 0);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(11)->status, BB_STATUS_EINVAL);
}

static void write_with_update_notifies_all_subscribers(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ | BB_FLAG_NOTIFY, 0, 0, 0);
    tb_req(12, BB_M_GATTS_WRITE, "uyb", h, "hi", (size_t)2, 1);
    tb_drain();
    const fp_call_t *c = fp_find("gatts_notify");
    TB_CHECK_EQ(tb_rsp(12)->status, BB_STATUS_OK);
    TB_CHECK(c != NULL);
    TB_CHECK_EQ(c->a[0], BB_CONN_NONE);
    TB_CHECK_EQ(c->a[1], h);
    TB_CHECK(c->data_null);
}

static void notify_with_null_data_sends_local_value(void)
{
    tb_boot();
    tb_activate();
    uint16_t h = register_a(BB_FLAG_READ | BB_FLAG_NOTIFY, 0, 0, 0);
    bb_on_central_connect(1, &peer);
    tb_req(13, BB_M_GATTS_NOTIFY, "uun", 1, h);
    tb_req(14, BB_M_GATTS_INDICATE, "uu", 2, h);
    tb_drain();
    const fp_call_t *c = fp_find("gatts_notify");
    TB_CHECK_EQ(tb_rsp(13)->status, BB_STATUS_OK);
    TB_CHECK_EQ(c->len, 2);
    TB_CHECK(memcmp(c->data, "ab", 2) == 0);
    TB_CHECK_EQ(tb_rsp(14)->status, BB_STATUS_UNKNOWN_HANDLE);
}

/* One service 0x180F with no characteristic, then `third` as its optional third element:
 * 0 none, 1 true, 2 a uint (not a bool). */
static size_t one_service(uint8_t *out, size_t cap, int third)
{
    ZCBOR_STATE_E(st, 4, out, cap, 0);
    bool ok = zcbor_list_start_encode(st, 1) && zcbor_list_start_encode(st, 3)
              && zcbor_bstr_encode_ptr(st, "\x0F\x18", 2) && zcbor_list_start_encode(st, 0)
              && zcbor_list_end_encode(st, 0);
    if (third == 1) {
        ok = ok && zcbor_bool_put(st, true);
    } else if (third == 2) {
        ok = ok && zcbor_uint32_put(st, 1);
    }
    ok = ok && zcbor_list_end_encode(st, 3) && zcbor_list_end_encode(st, 1);
    return ok ? (size_t)(st->payload - out) : 0;
}

static int register_one_service(int third)
{
    uint8_t svc[32];
    size_t n = one_service(svc, sizeof(svc), third);
    tb_req(510, BB_M_GATTS_REGISTER_SERVICES, "r", svc, n);
    tb_drain();
    return tb_rsp(510) != NULL ? (int)tb_rsp(510)->status : -1;
}

static void service_is_primary_without_third_element(void)
{
    tb_boot();
    tb_activate();
    TB_CHECK_EQ(register_one_service(0), BB_STATUS_OK);
    TB_CHECK(!bb_gatts_db.svcs[0].secondary);
}

static void service_third_element_true_is_secondary(void)
{
    tb_boot();
    tb_activate();
    TB_CHECK_EQ(register_one_service(1), BB_STATUS_OK);
    TB_CHECK(bb_gatts_db.svcs[0].secondary);
}

static void service_third_element_not_bool_is_bad_arg_type(void)
{
    tb_boot();
    tb_activate();
    TB_CHECK_EQ(register_one_service(2), BB_STATUS_BAD_ARG_TYPE);
}

static void reregistering_resets_the_pool(void)
{
    tb_boot();
    tb_activate();
    for (int i = 0; i < 5; i++) {
        TB_CHECK(register_a(BB_FLAG_READ, 0, 6, BB_MAX_ATTR_LEN) != 0);
    }
    TB_CHECK(bb_gatts_db.pool_used <= BB_ATTR_POOL_BYTES);
}

void run_gatts_tests(void)
{
    TB_RUN(register_services_answers_handle_structure);
    TB_RUN(register_services_needs_active_radio);
    TB_RUN(too_many_characteristics_is_enomem);
    TB_RUN(attribute_pool_exhaustion_is_enomem);
    TB_RUN(max_len_over_limit_is_value_too_large);
    TB_RUN(malformed_service_structure_is_bad_arg_type);
    TB_RUN(initial_value_is_readable);
    TB_RUN(unregistered_handle_is_unknown_handle);
    TB_RUN(default_buffer_is_20_bytes_when_max_len_is_0);
    TB_RUN(peer_write_is_truncated_to_buffer);
    TB_RUN(append_mode_appends_peer_writes_and_read_clears);
    TB_RUN(append_write_refused_by_full_queue_is_not_kept);
    TB_RUN(local_write_longer_than_buffer_grows_it);
    TB_RUN(local_write_beyond_pool_is_enomem);
    TB_RUN(fixed_length_write_of_other_length_is_einval);
    TB_RUN(write_with_update_notifies_all_subscribers);
    TB_RUN(notify_with_null_data_sends_local_value);
    TB_RUN(reregistering_resets_the_pool);
    TB_RUN(service_is_primary_without_third_element);
    TB_RUN(service_third_element_true_is_secondary);
    TB_RUN(service_third_element_not_bool_is_bad_arg_type);
}
