/*
 * libFuzzer harness: the sim port's decoding of messages from the air (bb_port_sim.c:
 * on_air_frame, the event queue, deliver()) and the core's bb_on_* callbacks behind it.
 * No socket: bytes go in through bb_sim_air_feed(); port calls made while delivering (the
 * gatts_value mirror of GATTS_WRITE, default answers) find no air and fail with -EIO.
 *
 * Input (fuzz_records.h): flags, then air messages, each framed and fed to the port.
 *   flags bit 0  radio on and a central connection (conn 1) first, so events for it count
 *   flags bit 3  the whole rest of the input is fed unframed, in one chunk
 *   flags bit 4  deliver after every message instead of once at the end
 */
#include <stdlib.h>
#include <string.h>

#include "bb_core.h"
#include "bb_frame.h"
#include "bb_port.h"
#include "bb_sim.h"
#include "fuzz_records.h"

/* Rounds of delivery and polling: the core's queue drains into the (absent) host each poll,
 * so held events go through in a few rounds; bounded so that a bug cannot hang the run. */
#define ROUNDS 64

static void deliver_all(void)
{
    for (int i = 0; i < ROUNDS; i++) {
        bool held = bb_sim_deliver_events();
        for (int k = 0; k < ROUNDS && bb_core_tx_pending(); k++) {
            bb_core_poll();
        }
        if (!held && !bb_sim_events_queued()) {
            return;
        }
    }
}

static void feed_framed(const uint8_t *payload, size_t len)
{
    static uint8_t wire[BB_FRAME_WIRE_MAX(BB_SIM_AIR_MSG_BUF)];
    size_t n = bb_frame_encode(payload, len, wire, sizeof(wire));
    bb_sim_air_feed(wire, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* No air socket: bb_port_init() sets up the clock and decoder, then returns -EINVAL. */
    bb_sim_configure(NULL, "fuzz", -1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    uint8_t flags = data[0];
    (void)bb_port_init();  /* a fresh air decoder per input */
    bb_core_init();
    deliver_all();
    if (flags & 0x01) {
        bb_core.active = true;
        static const bb_addr_t peer = {0, {1, 2, 3, 4, 5, 6}};
        bb_on_central_connect(1, &peer);
    }
    if (flags & 0x08) {
        bb_sim_air_feed(data + 1, size - 1);
        deliver_all();
        return 0;
    }
    fuzz_records_t recs = {data + 1, size - 1};
    const uint8_t *p;
    size_t len;
    while (fuzz_record_next(&recs, &p, &len)) {
        if (len == 0 || len > BB_SIM_AIR_MSG_BUF) {
            continue;
        }
        feed_framed(p, len);
        if (flags & 0x10) {
            deliver_all();
        }
    }
    deliver_all();
    /* Every queued event was delivered or dropped by the core; none may stay behind. */
    if (bb_sim_events_queued()) {
        abort();
    }
    return 0;
}
