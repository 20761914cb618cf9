/*
 * Core internals shared by the core's files (bb_core.c: transport, event queue, questions and
 * link tracking; bb_dispatch.c: request handlers) and the C unit tests. Ports use bb_port.h.
 */
#ifndef BB_CORE_H
#define BB_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "bb_evq.h"
#include "bb_frame.h"
#include "bb_msg.h"
#include "bb_port.h"

/* Counters reported by `diagnostics` (since boot; `reset` keeps them). */
typedef struct {
    uint32_t frames_tx;
    uint32_t malformed;
    uint32_t unknown_method;
    uint32_t bad_args;          /* BAD_ARG_COUNT and BAD_ARG_TYPE */
    uint32_t too_large;
    uint32_t unknown_handle;
    uint32_t not_active;        /* radio calls refused while the radio is off */
    uint32_t question_timeouts;
    uint32_t port_errors;       /* negative returns from bb_port_* (transport included) */
    uint32_t responses_dropped; /* response queue full even after flushing */
    uint32_t events_tx;         /* events handed to frames, BENCH excluded */
} bb_counters_t;

typedef struct {
    bool used;
    bool we_are_central;
    uint16_t conn;
} bb_link_t;

typedef struct {
    bool used;
    uint16_t conn;
    uint16_t cid;
} bb_chan_t;

typedef struct {
    bool used;
    uint8_t kind;          /* bb_question_kind_t */
    uint32_t token;        /* never 0 */
    uint32_t port_ref;
    uint32_t since_ms;     /* bb_port_millis() when asked */
} bb_question_t;

typedef struct {
    bool active;                 /* radio on (ble_active) */
    uint32_t boot_id;
    uint32_t boot_ms;
    bb_config_t cfg;             /* handed to bb_port_config_apply whole */
    uint32_t rxbuf;              /* config RXBUF, informational */
    bb_link_t links[BB_MAX_CONNECTIONS];
    bb_chan_t chans[BB_MAX_L2CAP_CHANNELS];
    bb_question_t questions[BB_MAX_QUESTIONS];
    uint32_t next_token;
    /* Scan filters of the running gap_scan_start, applied in bb_on_scan_result. */
    bool scan_rssi_filter;
    int8_t scan_rssi_min;        /* dBm */
    uint8_t scan_prefix_len;
    uint8_t scan_prefix[BB_MAX_SCAN_PREFIX];
    /* bench_events in progress: events still to send, next seq, payload bytes. */
    uint32_t bench_left;
    uint32_t bench_seq;
    uint16_t bench_len;
    /* EVENTS_DROPPED rate limit (BB_DEFAULTS_DIAG_SCAN_DROP_EVENT_MS). */
    bool drop_reported;
    uint32_t drop_report_ms;
    /* Sequence number of the next event frame, modulo BB_EVENT_SEQ_MOD: 0 at boot, kept by
     * `reset` (the host counts a gap in it as event frames lost on the link). */
    uint32_t event_seq;
    bb_counters_t n;
} bb_core_t;

extern bb_core_t bb_core;
extern bb_evq_t bb_core_evq;
extern bb_frame_decoder_t bb_core_rxdec;


/* Dispatch a validated request; writes the result (when OK) to res. Returns a status. */
int bb_dispatch(const bb_request_t *r, zcbor_state_t *res);

bool bb_core_conn_known(uint16_t conn);
bool bb_core_chan_known(uint16_t conn, uint16_t cid);
/* The open question with this token, or NULL. */
bb_question_t *bb_core_question_find(uint32_t token);
/* Close a question and pass the answer to the port. */
void bb_core_question_answer(bb_question_t *q, const bb_answer_t *answer);
/* Answer every open question with its safe default (radio off, reset). */
void bb_core_questions_default_all(void);
/* Forget connections and channels (radio off, reset). */
void bb_core_links_clear(void);
/* The core's state after boot, counters kept: event queue, questions, links, bench, config. */
void bb_core_state_reset(void);

#endif /* BB_CORE_H */
