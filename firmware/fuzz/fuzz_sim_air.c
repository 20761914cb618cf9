/*
 * libFuzzer harness: the sim port's decoding of messages from the air (bb_port_sim.c:
 * on_air_frame, the event queue, deliver()) and the core's bb_on_* callbacks behind it.
 * Events: bytes go in through bb_sim_air_feed(), no socket; port calls made while delivering
 * (the gatts_value mirror of GATTS_WRITE, default answers) find no air and fail with -EIO.
 * Responses (flags bit 5): for each port call whose result the port decodes (addr_get,
 * gatts_register, sec_state, l2cap_send) the messages go into a socketpair whose end the port
 * reads as the air (bb_sim_air_attach), closed for writing behind them; the call has id 1. A
 * call without its response meets the end of the stream: -EIO at once, no timeout.
 *
 * Input (fuzz_records.h): flags, then air messages, each framed and fed to the port.
 *   flags bit 0  radio on and a central connection (conn 1) first, so events for it count
 *   flags bit 3  the whole rest of the input is fed unframed, in one chunk
 *   flags bit 4  deliver after every message instead of once at the end
 *   flags bit 5  the messages are the air's side of port calls (above)
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* Make one port call with the air's side in data: the framed messages wait in a socketpair
 * whose other end the port reads as the air, closed for writing behind them. The call's id is
 * 1 (bb_sim_air_attach restarts the ids). */
static void call_with_answers(int call, const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        abort();
    }
    static uint8_t wire[BB_FRAME_WIRE_MAX(BB_SIM_AIR_MSG_BUF)];
    fuzz_records_t recs = {data, size};
    const uint8_t *p;
    size_t len;
    while (fuzz_record_next(&recs, &p, &len)) {
        size_t n = len == 0 || len > BB_SIM_AIR_MSG_BUF ? 0 : bb_frame_encode(p, len, wire, sizeof(wire));
        /* at most 4 KiB of input: fits the socket buffer, the write does not block */
        if (n > 0 && write(sv[1], wire, n) != (ssize_t)n) {
            abort();
        }
    }
    shutdown(sv[1], SHUT_WR);
    bb_sim_air_attach(sv[0]);

    /* One service: a characteristic with a descriptor, one without. */
    static bb_gatts_dsc_t dscs[1] = {{.uuid = {2, {0x01, 0x29}}, .flags = 2, .max_len = 20}};
    static bb_gatts_chr_t chrs[2] = {
        {.uuid = {2, {0x37, 0x2A}}, .flags = 0x12, .max_len = 20, .dsc_count = 1, .dscs = dscs},
        {.uuid = {2, {0x38, 0x2A}}, .flags = 0x08, .max_len = 512},
    };
    static bb_gatts_svc_t svc = {.uuid = {2, {0x0D, 0x18}}, .chr_count = 2, .chrs = chrs};
    static const uint8_t payload[3] = {1, 2, 3};
    bb_addr_t addr;
    bool enc = false, auth = false, bonded = false;
    uint8_t key_size = 0;
    switch (call) {
    case 0: (void)bb_port_addr_get(&addr); break;
    case 1: (void)bb_port_gatts_register(&svc, 1); break;
    case 2: (void)bb_port_sec_state(1, &enc, &auth, &bonded, &key_size); break;
    default: (void)bb_port_l2cap_send(1, 0x40, payload, sizeof(payload)); break;
    }
    if (bb_sim_air_fd() >= 0) {
        close(bb_sim_air_fd());  /* the call did not read to the end */
    }
    bb_sim_air_attach(-1);
    close(sv[1]);
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
    if (flags & 0x20) {
        for (int call = 0; call < 4; call++) {
            call_with_answers(call, data + 1, size - 1);
        }
        deliver_all();  /* events that came with the answers */
        return 0;
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
