/* Request parsing and generic argument validation against bb_methods[]. */
#include <string.h>

#include "bb_core.h"
#include "bb_proto.h"
#include "fake_port.h"
#include "tb.h"
#include "tb_msg.h"
#include "tests.h"

static void non_array_request_is_malformed_with_null_id(void)
{
    tb_boot();
    const uint8_t cbor[] = {0x01};
    tb_rx_payload(cbor, sizeof(cbor));
    tb_drain();
    TB_CHECK_EQ(tb_out.nrsp, 1);
    TB_CHECK(tb_out.rsp[0].id_null);
    TB_CHECK_EQ(tb_out.rsp[0].status, BB_STATUS_MALFORMED);
    TB_CHECK(tb_result_is_nil(&tb_out.rsp[0]));
    TB_CHECK_EQ(bb_core.n.malformed, 1);
}

static void response_kind_from_host_is_malformed(void)
{
    tb_boot();
    const uint8_t cbor[] = {0x84, 0x01, 0x05, 0x00, 0xF6};
    tb_rx_payload(cbor, sizeof(cbor));
    tb_drain();
    TB_CHECK_EQ(tb_out.nrsp, 1);
    TB_CHECK(tb_out.rsp[0].id_null);
    TB_CHECK_EQ(tb_out.rsp[0].status, BB_STATUS_MALFORMED);
}

static void request_without_method_is_malformed_with_its_id(void)
{
    tb_boot();
    const uint8_t cbor[] = {0x82, 0x00, 0x07};
    tb_rx_payload(cbor, sizeof(cbor));
    tb_drain();
    const tb_rsp_t *r = tb_rsp(7);
    TB_CHECK(r != NULL);
    TB_CHECK_EQ(r->status, BB_STATUS_MALFORMED);
}

static void truncated_cbor_is_malformed(void)
{
    tb_boot();
    const uint8_t cbor[] = {0x84, 0x00, 0x08, 0x05, 0x45, 0x01};  /* bstr(5) with one byte */
    tb_rx_payload(cbor, sizeof(cbor));
    tb_drain();
    TB_CHECK_EQ(tb_rsp(8)->status, BB_STATUS_MALFORMED);
}

static void unknown_method_is_reported(void)
{
    tb_boot();
    tb_req(3, 200, "");
    tb_drain();
    TB_CHECK_EQ(tb_rsp(3)->status, BB_STATUS_UNKNOWN_METHOD);
    TB_CHECK_EQ(bb_core.n.unknown_method, 1);
}

static void too_few_arguments_is_bad_arg_count(void)
{
    tb_boot();
    tb_req(4, BB_M_HANDSHAKE, "u", 1);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(4)->status, BB_STATUS_BAD_ARG_COUNT);
}

static void too_many_arguments_is_bad_arg_count(void)
{
    tb_boot();
    tb_req(5, BB_M_ECHO, "yu", "ab", (size_t)2, 1);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(5)->status, BB_STATUS_BAD_ARG_COUNT);
    TB_CHECK_EQ(bb_core.n.bad_args, 1);
}

static void more_than_max_args_is_bad_arg_count(void)
{
    tb_boot();
    tb_req(6, BB_M_GAP_ADVERTISE_START, "uuuuuuuuuuuu", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(6)->status, BB_STATUS_BAD_ARG_COUNT);
}

static void text_for_bytes_is_bad_arg_type(void)
{
    tb_boot();
    tb_req(7, BB_M_ECHO, "s", "hello");
    tb_drain();
    TB_CHECK_EQ(tb_rsp(7)->status, BB_STATUS_BAD_ARG_TYPE);
}

static void negative_for_uint_is_bad_arg_type(void)
{
    tb_boot();
    tb_req(8, BB_M_GATTS_READ, "i", -1);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(8)->status, BB_STATUS_BAD_ARG_TYPE);
}

static void null_for_required_arg_is_bad_arg_type(void)
{
    tb_boot();
    tb_req(9, BB_M_GATTS_READ, "n");
    tb_drain();
    TB_CHECK_EQ(tb_rsp(9)->status, BB_STATUS_BAD_ARG_TYPE);
}

static void addr_of_five_bytes_is_bad_arg_type(void)
{
    tb_boot();
    tb_activate();
    tb_req(10, BB_M_GAP_CONNECT, "uyu", 0, "\1\2\3\4\5", (size_t)5, 1000);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(10)->status, BB_STATUS_BAD_ARG_TYPE);
}

static void uuid_of_three_bytes_is_bad_arg_type(void)
{
    tb_boot();
    tb_activate();
    tb_req(11, BB_M_GATTC_DISCOVER_SERVICES, "uy", 0, "\1\2\3", (size_t)3);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(11)->status, BB_STATUS_BAD_ARG_TYPE);
}

static void bytes_over_limit_is_value_too_large(void)
{
    tb_boot();
    static uint8_t data[BB_MAX_ATTR_LEN + 1];
    tb_req(12, BB_M_ECHO, "y", data, sizeof(data));
    tb_drain();
    TB_CHECK_EQ(tb_rsp(12)->status, BB_STATUS_VALUE_TOO_LARGE);
    TB_CHECK_EQ(bb_core.n.too_large, 1);
}

static void uint_over_max_is_value_too_large(void)
{
    tb_boot();
    tb_req(13, BB_M_BENCH_EVENTS, "uu", 1, BB_MAX_BENCH_PAYLOAD + 1);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(13)->status, BB_STATUS_VALUE_TOO_LARGE);
}

static void uint_over_32_bits_is_value_too_large(void)
{
    tb_boot();
    const uint8_t big[] = {0x1B, 0, 0, 0, 1, 0, 0, 0, 0};  /* 2^32 */
    tb_req(14, BB_M_GATTS_READ, "r", big, sizeof(big));
    tb_drain();
    TB_CHECK_EQ(tb_rsp(14)->status, BB_STATUS_VALUE_TOO_LARGE);
}

static void nullable_arg_accepts_null(void)
{
    tb_boot();
    tb_req(15, BB_M_BLE_ACTIVE, "n");
    tb_drain();
    bool on = true;
    TB_CHECK_EQ(tb_rsp(15)->status, BB_STATUS_OK);
    TB_CHECK(tb_result_bool(tb_rsp(15), &on));
    TB_CHECK(!on);
}

static void trailing_optional_args_may_be_omitted(void)
{
    tb_boot();
    tb_activate();
    tb_req(16, BB_M_GAP_SCAN_START, "uuubb", 1000, 30000, 30000, 1, 0);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(16)->status, BB_STATUS_OK);
    TB_CHECK(fp_find("gap_scan_start") != NULL);
}

static void deeply_nested_any_is_malformed(void)
{
    tb_boot();
    uint8_t nest[40];
    memset(nest, 0x81, sizeof(nest));
    nest[sizeof(nest) - 1] = 0x00;
    tb_req(17, BB_M_GATTS_REGISTER_SERVICES, "r", nest, sizeof(nest));
    tb_drain();
    TB_CHECK_EQ(tb_rsp(17)->status, BB_STATUS_MALFORMED);
}

static void indefinite_length_request_is_accepted(void)
{
    tb_boot();
    const uint8_t cbor[] = {0x9F, 0x00, 0x12, 0x05, 0x42, 0xAB, 0xCD, 0xFF};  /* echo h'ABCD' */
    tb_rx_payload(cbor, sizeof(cbor));
    tb_drain();
    const uint8_t *p;
    TB_CHECK_EQ(tb_rsp(0x12)->status, BB_STATUS_OK);
    TB_CHECK_EQ(tb_result_bytes(tb_rsp(0x12), &p), 2);
    TB_CHECK_EQ(p[1], 0xCD);
}

void run_request_tests(void)
{
    TB_RUN(non_array_request_is_malformed_with_null_id);
    TB_RUN(response_kind_from_host_is_malformed);
    TB_RUN(request_without_method_is_malformed_with_its_id);
    TB_RUN(truncated_cbor_is_malformed);
    TB_RUN(unknown_method_is_reported);
    TB_RUN(too_few_arguments_is_bad_arg_count);
    TB_RUN(too_many_arguments_is_bad_arg_count);
    TB_RUN(more_than_max_args_is_bad_arg_count);
    TB_RUN(text_for_bytes_is_bad_arg_type);
    TB_RUN(negative_for_uint_is_bad_arg_type);
    TB_RUN(null_for_required_arg_is_bad_arg_type);
    TB_RUN(addr_of_five_bytes_is_bad_arg_type);
    TB_RUN(uuid_of_three_bytes_is_bad_arg_type);
    TB_RUN(bytes_over_limit_is_value_too_large);
    TB_RUN(uint_over_max_is_value_too_large);
    TB_RUN(uint_over_32_bits_is_value_too_large);
    TB_RUN(nullable_arg_accepts_null);
    TB_RUN(trailing_optional_args_may_be_omitted);
    TB_RUN(deeply_nested_any_is_malformed);
    TB_RUN(indefinite_length_request_is_accepted);
}
