/* Board->host questions: tokens, replies, timeouts with safe defaults. */
#include <errno.h>
#include <string.h>

#include "bb_core.h"
#include "bb_proto.h"
#include "fake_port.h"
#include "tb.h"
#include "tb_msg.h"
#include "tests.h"

static uint32_t ask_read(uint32_t ref)
{
    bb_on_question_read(ref, 1, 42);
    tb_drain();
    const tb_evt_t *e = NULL;
    for (unsigned i = 0; i < tb_out.nevt; i++) {
        if (tb_out.evt[i].code == BB_EV_GATTS_READ_REQUEST) {
            e = &tb_out.evt[i];
        }
    }
    return e != NULL ? tb_field_u32(e, 0) : 0;
}

static void read_request_event_carries_token_conn_and_handle(void)
{
    tb_boot();
    uint32_t token = ask_read(77);
    const tb_evt_t *e = tb_evt(BB_EV_GATTS_READ_REQUEST);
    TB_CHECK(token != 0);
    TB_CHECK_EQ(tb_field_u32(e, 1), 1);
    TB_CHECK_EQ(tb_field_u32(e, 2), 42);
}

static void reply_passes_answer_to_port_once(void)
{
    tb_boot();
    uint32_t token = ask_read(77);
    tb_req(1, BB_M_REPLY, "uu", token, BB_ATT_ERROR_INSUFFICIENT_AUTHORIZATION);
    tb_req(2, BB_M_REPLY, "uu", token, 0);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(1)->status, BB_STATUS_OK);
    TB_CHECK_EQ(tb_rsp(2)->status, BB_STATUS_UNKNOWN_HANDLE);
    TB_CHECK_EQ(fp.answers, 1);
    TB_CHECK_EQ(fp.answer_kind, BB_QUESTION_READ);
    TB_CHECK_EQ(fp.answer_ref, 77);
    TB_CHECK_EQ(fp.answer.u, BB_ATT_ERROR_INSUFFICIENT_AUTHORIZATION);
    TB_CHECK(!fp.answer.timed_out);
}

static void reply_with_unknown_token_is_unknown_handle(void)
{
    tb_boot();
    tb_req(3, BB_M_REPLY, "uu", 12345, 0);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(3)->status, BB_STATUS_UNKNOWN_HANDLE);
    TB_CHECK_EQ(fp.answers, 0);
}

static void reply_of_wrong_type_keeps_question_open(void)
{
    tb_boot();
    uint32_t token = ask_read(5);
    tb_req(4, BB_M_REPLY, "us", token, "yes");
    tb_drain();
    TB_CHECK_EQ(tb_rsp(4)->status, BB_STATUS_BAD_ARG_TYPE);
    TB_CHECK_EQ(fp.answers, 0);
    TB_CHECK(bb_core_question_find(token) != NULL);
}

static void read_question_times_out_allowing_the_read(void)
{
    tb_boot();
    ask_read(9);
    fp.now_ms += BB_DEFAULTS_QUESTION_TIMEOUT_MS - 1;
    bb_core_poll();
    TB_CHECK_EQ(fp.answers, 0);
    fp.now_ms += 1;
    bb_core_poll();
    TB_CHECK_EQ(fp.answers, 1);
    TB_CHECK(fp.answer.timed_out);
    TB_CHECK_EQ(fp.answer.u, 0);
    TB_CHECK_EQ(bb_core.n.question_timeouts, 1);
}

static void l2cap_accept_question_times_out_accepting(void)
{
    tb_boot();
    bb_on_question_l2cap_accept(3, 1, 0x40, 0x80, 512, 256);
    fp.now_ms += BB_DEFAULTS_QUESTION_TIMEOUT_MS;
    bb_core_poll();
    TB_CHECK_EQ(fp.answer_kind, BB_QUESTION_L2CAP_ACCEPT);
    TB_CHECK(fp.answer.timed_out);
    TB_CHECK_EQ(fp.answer.u, 0);
}

static void get_secret_question_times_out_not_found(void)
{
    tb_boot();
    bb_on_question_get_secret(4, BB_SECRET_TYPE_OUR_SEC, 0, (const uint8_t *)"k", 1);
    fp.now_ms += BB_DEFAULTS_QUESTION_TIMEOUT_MS;
    bb_core_poll();
    TB_CHECK_EQ(fp.answer_kind, BB_QUESTION_GET_SECRET);
    TB_CHECK(!fp.answer.found);
    TB_CHECK(fp.answer.data == NULL);
}

static void set_secret_question_times_out_not_stored(void)
{
    tb_boot();
    bb_on_question_set_secret(5, BB_SECRET_TYPE_PEER_SEC, (const uint8_t *)"k", 1, NULL, 0);
    fp.now_ms += BB_DEFAULTS_QUESTION_TIMEOUT_MS;
    bb_core_poll();
    TB_CHECK_EQ(fp.answer_kind, BB_QUESTION_SET_SECRET);
    TB_CHECK(!fp.answer.found);
}

static void get_secret_reply_bytes_reach_port(void)
{
    tb_boot();
    bb_on_question_get_secret(6, BB_SECRET_TYPE_PEER_ID, 2, NULL, 0);
    tb_drain();
    const tb_evt_t *e = tb_evt(BB_EV_GET_SECRET);
    zcbor_state_t st[2];
    TB_CHECK(tb_field(e, 3, st, 2) && zcbor_nil_expect(st, NULL));  /* key null: by index */
    tb_req(7, BB_M_REPLY, "uy", tb_field_u32(e, 0), "secret", (size_t)6);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(7)->status, BB_STATUS_OK);
    TB_CHECK(fp.answer.found);
    TB_CHECK_EQ(fp.answer.len, 6);
    TB_CHECK(memcmp(fp.answer.data, "secret", 6) == 0);
}

static void questions_beyond_the_table_return_enomem(void)
{
    tb_boot();
    for (unsigned i = 0; i < BB_MAX_QUESTIONS; i++) {
        TB_CHECK_EQ(bb_on_question_read(i, 1, 3), 0);
    }
    TB_CHECK_EQ(bb_on_question_read(99, 1, 3), -ENOMEM);
}

static void radio_off_answers_open_questions_with_defaults(void)
{
    tb_boot();
    tb_activate();
    bb_on_question_read(11, 1, 3);
    tb_req(8, BB_M_BLE_ACTIVE, "b", 0);
    tb_drain();
    TB_CHECK_EQ(fp.answers, 1);
    TB_CHECK(fp.answer.timed_out);
    /* answered before the port was told to turn the radio off */
    TB_CHECK(strcmp(fp.calls[fp.ncalls - 1].name, "ble_activate") == 0);
}

static void ask_secret_inside_activate(const char *name)
{
    if (strcmp(name, "ble_activate") == 0) {
        bb_on_question_get_secret(21, 0, 0, NULL, 0);
    }
}

/* A port's question raised inside a call (the NimBLE port's bond prefetch in ble_active) goes
 * out ahead of that call's response: the host sees it as asked inside the call. */
static void question_raised_inside_a_call_goes_out_before_its_response(void)
{
    tb_boot();
    fp.inside = ask_secret_inside_activate;
    tb_req(9, BB_M_BLE_ACTIVE, "b", 1);
    tb_drain();
    const tb_evt_t *e = tb_evt(BB_EV_GET_SECRET);
    TB_CHECK(e != NULL && tb_rsp(9) != NULL);
    if (e != NULL && tb_rsp(9) != NULL) {
        TB_CHECK(e->frame < tb_rsp(9)->frame);
    }
    TB_CHECK_EQ(tb_out.seq_errors, 0);
}

/* A call that raises nothing keeps its response ahead of events queued before it. */
static void response_of_a_call_raising_nothing_goes_out_before_queued_events(void)
{
    tb_boot();
    tb_activate();
    bb_on_question_read(12, 1, 3);
    tb_req(10, BB_M_GAP_SCAN_STOP, "");
    tb_drain();
    const tb_evt_t *e = tb_evt(BB_EV_GATTS_READ_REQUEST);
    TB_CHECK(e != NULL && tb_rsp(10) != NULL);
    if (e != NULL && tb_rsp(10) != NULL) {
        TB_CHECK(tb_rsp(10)->frame < e->frame);
    }
}

void run_question_tests(void)
{
    TB_RUN(read_request_event_carries_token_conn_and_handle);
    TB_RUN(reply_passes_answer_to_port_once);
    TB_RUN(reply_with_unknown_token_is_unknown_handle);
    TB_RUN(reply_of_wrong_type_keeps_question_open);
    TB_RUN(read_question_times_out_allowing_the_read);
    TB_RUN(l2cap_accept_question_times_out_accepting);
    TB_RUN(get_secret_question_times_out_not_found);
    TB_RUN(set_secret_question_times_out_not_stored);
    TB_RUN(get_secret_reply_bytes_reach_port);
    TB_RUN(questions_beyond_the_table_return_enomem);
    TB_RUN(radio_off_answers_open_questions_with_defaults);
    TB_RUN(question_raised_inside_a_call_goes_out_before_its_response);
    TB_RUN(response_of_a_call_raising_nothing_goes_out_before_queued_events);
}
