/* Hostile input: random bytes and random well-framed CBOR-ish payloads into bb_core_rx. Runs
 * under AddressSanitizer/UBSan in the test build; passing means no crash, no sanitizer report,
 * and the core still answers afterwards. */
#include <stdlib.h>
#include <string.h>

#include "bb_core.h"
#include "bb_proto.h"
#include "fake_port.h"
#include "tb.h"
#include "tb_msg.h"
#include "tests.h"

static void random_bytes_do_not_crash_the_core(void)
{
    tb_boot();
    tb_activate();
    srand(42);
    static uint8_t chunk[1000];
    for (int i = 0; i < 100; i++) {
        for (size_t k = 0; k < sizeof(chunk); k++) {
            chunk[k] = (uint8_t)rand();
        }
        bb_core_rx(chunk, sizeof(chunk));
        bb_core_poll();
        fp.out_len = 0;  /* discard output, keep memory bounded */
    }
    tb_boot();
    tb_req(1, BB_M_ECHO, "y", "ok", (size_t)2);
    tb_drain();
    TB_CHECK_EQ(tb_rsp(1)->status, BB_STATUS_OK);
}

/* Requests with a valid envelope and random method and arguments, to reach the handlers. */
static void random_requests_do_not_crash_the_core(void)
{
    tb_boot();
    tb_activate();
    srand(7);
    static const bb_addr_t peer = {0, {1, 2, 3, 4, 5, 6}};
    bb_on_central_connect(1, &peer);
    bb_on_l2cap_connect(1, 0x40, 0x80, 100, 100);
    static const uint8_t items[][6] = {
        {1, 0x00}, {1, 0x01}, {2, 0x18, 0x40}, {1, 0x20}, {1, 0xF5}, {1, 0xF4}, {1, 0xF6},
        {3, 0x42, 0x01, 0x02}, {5, 0x82, 0x41, 0x00, 0x80, 0x80}, {2, 0x61, 0x41}, {1, 0x80},
        {1, 0xA0}, {3, 0x19, 0xFF, 0xFF}, {2, 0x81, 0x81}, {1, 0xFF}, {1, 0x9F},
    };
    const size_t nitems = sizeof(items) / sizeof(items[0]);
    uint32_t rx_before = bb_core_rxdec.frames_rx, tx_before = bb_core.n.frames_tx;
    for (int i = 0; i < 20000; i++) {
        uint8_t p[64];
        size_t n = 0;
        unsigned argc = (unsigned)rand() % 8;
        p[n++] = (uint8_t)(0x80 | (3 + argc));
        p[n++] = 0x00;
        p[n++] = 0x01;
        p[n++] = (uint8_t)(rand() % 64);
        for (unsigned a = 0; a < argc; a++) {
            const uint8_t *it = items[(size_t)rand() % nitems];
            memcpy(p + n, it + 1, it[0]);
            n += it[0];
        }
        if (rand() % 10 == 0) {
            p[(size_t)rand() % n] = (uint8_t)rand();
        }
        tb_rx_payload(p, n);
        bb_core_poll();
        fp.out_len = 0;
    }
    /* every request was framed correctly, so each one got exactly one response */
    TB_CHECK_EQ(bb_core_rxdec.frames_rx - rx_before, 20000);
    TB_CHECK_EQ(bb_core.n.responses_dropped, 0);
    TB_CHECK(bb_core.n.frames_tx - tx_before >= 20000);
}

void run_fuzz_tests(void)
{
    TB_RUN(random_bytes_do_not_crash_the_core);
    TB_RUN(random_requests_do_not_crash_the_core);
}
