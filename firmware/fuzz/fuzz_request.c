/*
 * libFuzzer harness: request decoding and dispatch (bb_msg.c, bb_dispatch.c, bb_core.c,
 * bb_gatts.c) over the C unit tests' fake port (firmware/tests/fake_port.c), which accepts
 * every call, so handlers run to the end instead of stopping at EOPNOTSUPP as on the null port.
 *
 * Input (fuzz_records.h): flags, then request payloads, each framed and handed to bb_core_rx.
 *   flags bit 0  radio on first (ble_active(true))
 *   flags bit 1  a central connection (conn 1) with an L2CAP channel (cid 0x40) first, and
 *                four open questions (tokens 1..4: read, L2CAP accept, get and set secret) for
 *                `reply` to answer
 *   flags bit 2  one port call, picked by bits 4-7, fails with -EIO (the error paths)
 *   flags bit 3  the whole rest of the input goes to bb_core_rx unframed, in one chunk
 *   flags bits 4-5 (bit 2 clear)  the transport takes at most 1, 7 or 64 bytes a write
 *                  (partial writes), 0: all
 *   flags bits 6-7 (bit 2 clear)  its first 1..3 writes take nothing (a stalled link)
 * The clock moves CLOCK_STEP_MS after each request (open questions time out after a few).
 *
 * Checked besides ASan/UBSan: every framed request is received as one frame, none of their
 * responses is dropped, and what the core sends decodes as frames holding CBOR arrays
 * [1, id or null, status, result] (exactly one per request), [2, ...] or [3, ...].
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bb_core.h"
#include "bb_frame.h"
#include "bb_proto.h"
#include "fake_port.h"
#include "fuzz_records.h"

/* Polls after the responses are out: enough for the events a request caused, bounded so that
 * bench_events(2^32 - 1, ...) does not run forever. */
#define POLLS_AFTER_RESPONSES 64
/* Polls before a missing response is a finding: a largest response written 1 byte a time,
 * for every frame of the largest input, with room to spare. */
#define POLLS_MAX 2000000L
#define CLOCK_STEP_MS 1000u

static bb_frame_decoder_t out_dec;
static uint32_t responses;

/* One frame the core sent: a CBOR array whose first item is a message kind. */
static void on_out_frame(void *ctx, const uint8_t *payload, size_t len)
{
    (void)ctx;
    uint32_t kind = 0;
    ZCBOR_STATE_D(zs, 1, payload, len, 1, 0);
    if (!zcbor_list_start_decode(zs) || !zcbor_uint32_decode(zs, &kind)) {
        abort();
    }
    if (kind == BB_MSG_RSP) {
        uint32_t id = 0, status = 0;
        if (!(zcbor_uint32_decode(zs, &id) || zcbor_nil_expect(zs, NULL))
            || !zcbor_uint32_decode(zs, &status)) {
            abort();
        }
        responses++;
    } else if (kind != BB_MSG_EVT && kind != BB_MSG_EVT_BATCH) {
        abort();
    }
}

/* Poll until the core has sent `want` responses since boot, then POLLS_AFTER_RESPONSES more
 * (or until it has nothing left to send). */
static void drain_until(uint32_t want)
{
    int after = POLLS_AFTER_RESPONSES;
    for (long i = 0; i < POLLS_MAX && bb_core_tx_pending(); i++) {
        bb_core_poll();
        bb_frame_decoder_feed(&out_dec, fp.out, fp.out_len, on_out_frame, NULL);
        fp.out_len = 0; /* checked: keep the capture buffer from filling */
        if (responses >= want && --after <= 0) {
            break;
        }
    }
}

static void rx_framed(const uint8_t *payload, size_t len)
{
    static uint8_t wire[BB_FRAME_WIRE_MAX(BB_MAX_FRAME)];
    size_t n = bb_frame_encode(payload, len, wire, sizeof(wire));
    bb_core_rx(wire, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fp_reset();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    uint8_t flags = data[0];
    /* fp_reset() clears the 2 MiB capture buffer too: reset only what a run changes. */
    fp.ncalls = 0;
    fp.out_len = 0;
    fp.fail_name = NULL;
    fp.fail_rc = 0;
    fp.l2cap_send_rc = 0;
    fp.write_limit = 0;
    fp.write_stall = 0;
    fp.now_ms = 1000;
    fp.critical_depth = 0;
    fp.answers = 0;
    bb_frame_decoder_init(&out_dec);
    responses = 0;
    if (!(flags & 0x04)) {
        static const size_t limits[4] = {0, 1, 7, 64};
        fp.write_limit = limits[(flags >> 4) & 3];
        fp.write_stall = flags >> 6;
    }
    bb_core_init();
    drain_until(0);

    uint32_t expect = 0;
    if (flags & 0x01) {
        static const uint8_t activate[] = {0x84, 0x00, 0x19, 0x27, 0x0F, BB_M_BLE_ACTIVE, 0xF5};
        rx_framed(activate, sizeof(activate));
        expect++;
        drain_until(expect);
    }
    if (flags & 0x02) {
        static const bb_addr_t peer = {0, {1, 2, 3, 4, 5, 6}};
        bb_on_central_connect(1, &peer);
        bb_on_l2cap_connect(1, 0x40, 0x80, 100, 100);
        static const uint8_t key[] = {1, 2, 3};
        bb_on_question_read(77, 1, 12);
        bb_on_question_l2cap_accept(78, 1, 0x41, 0x80, 100, 100);
        bb_on_question_get_secret(79, 1, 0, key, sizeof(key));
        bb_on_question_set_secret(80, 1, key, sizeof(key), key, sizeof(key));
        drain_until(expect);
    }
    if (flags & 0x04) {
        static const char *const fail[16] = {
            "ble_activate", "config_apply", "gap_advertise_start", "gap_scan_start",
            "gap_connect", "gap_disconnect", "gatts_register", "gatts_notify", "gatts_indicate",
            "gattc_read", "gattc_write", "l2cap_send", "l2cap_connect", "gap_pair", "sec_state",
            "addr_get",
        };
        fp.fail_name = fail[flags >> 4];
        fp.fail_rc = -EIO;
    }
    if (flags & 0x08) {
        bb_core_rx(data + 1, size - 1);
        drain_until(bb_core_rxdec.frames_rx);
        if (out_dec.garbage_bytes != 0 || responses != bb_core_rxdec.frames_rx) {
            abort();
        }
        return 0;
    }
    fuzz_records_t recs = {data + 1, size - 1};
    const uint8_t *p;
    size_t len;
    while (fuzz_record_next(&recs, &p, &len)) {
        if (len == 0 || len > BB_MAX_FRAME) {
            continue;  /* not a frame bb_frame_encode makes */
        }
        rx_framed(p, len);
        expect++;
        drain_until(expect);
        fp.now_ms += CLOCK_STEP_MS;
    }
    if (bb_core_rxdec.frames_rx != expect || bb_core.n.responses_dropped != 0
        || responses != expect || out_dec.garbage_bytes != 0) {
        abort();
    }
    return 0;
}
