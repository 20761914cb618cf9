/*
 * Core main loop: bytes in (frames -> requests -> responses), events out (queue -> batched
 * frames), question timeouts, and the bb_on_* callbacks ports raise from stack context.
 *
 * Outgoing order: a response waiting in the response queue goes first, then queued events
 * (with EVENTS_DROPPED in front when due), then BENCH events; except that a call which raised
 * events while it ran (a question the port asks inside the call, a SCAN_DONE it reports) has
 * them, and the events queued before them, sent ahead of its response: the host sees them as
 * raised inside the call, as a stack's synchronous callbacks are (RSP_AFTER_EVENTS). One
 * encoded frame is in flight at a time; a partial transport write keeps the rest and retries
 * on the next bb_core_poll.
 */
#include "bb_core.h"

#include <string.h>

#include "bb_gatts.h"
#include "bb_proto.h"

_Static_assert(BB_ATTR_POOL_BYTES <= 65535, "attribute pool offsets are 16-bit");
_Static_assert(BB_RSP_QUEUE_BYTES >= BB_MAX_FRAME + BB_RING_HDR, "a largest response must fit");

bb_core_t bb_core;
bb_evq_t bb_core_evq;
bb_frame_decoder_t bb_core_rxdec;

/* Shared by the response encoder (in bb_core_rx) and the frame builder (in pump); both run in
 * the main loop and never nest. */
static uint8_t work[BB_MAX_FRAME];
static uint8_t tx_buf[BB_TX_FRAME_BUF];
static size_t tx_len, tx_off;
static uint8_t rsp_buf[BB_RSP_QUEUE_BYTES];
static bb_ring_t rsp_ring;
/* Events are encoded here under the critical section, then copied into their ring. */
static uint8_t ev_scratch[BB_EVENT_MAX_BYTES];

/* Result encodings start this far into `work`, leaving room for `[1, id, status,` in front:
 * array head 1 + id up to 5 + status up to 3 bytes. */
#define RSP_PREFIX_ROOM 10
/* Event batches start this far into `work`: batch head (up to 3 bytes), the kind byte and the
 * frame's sequence number (up to 3 bytes: it is below BB_EVENT_SEQ_MOD). */
#define BATCH_ROOM 7
_Static_assert(BB_EVENT_SEQ_MOD <= 65536, "an event frame's seq must fit BATCH_ROOM");
/* An event's array head takes 1 byte (fewer than 24 items). */
_Static_assert(BB_EVENT_MAX_BYTES + 1 + BATCH_ROOM <= BB_MAX_FRAME, "one event must fit in a frame");
/* Encoder states: one per nesting level of a result, plus zcbor's two. */
#define RSP_BACKUPS 8

/* ---------------------------------------------------------------------------------------- */
/* Events                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* One event field value; which member is read depends on the field type in bb_events[]. */
typedef struct {
    uint32_t u;
    int32_t i;
    const uint8_t *p;   /* bytes, uuid, addr, str; NULL encodes null for nullable fields */
    uint16_t len;
} ev_val_t;

/* Encode `code, fields...` and queue it. Caller holds the critical section. */
static int emit_locked(uint8_t code, const ev_val_t *v)
{
    const bb_event_spec_t *spec = bb_event_spec(code);
    if (spec == NULL) {
        return -BB_STATUS_EINVAL;
    }
    ZCBOR_STATE_E(st, 0, ev_scratch, sizeof(ev_scratch), 0);
    bool ok = zcbor_uint32_put(st, code);
    for (unsigned i = 0; ok && i < spec->nfields; i++) {
        switch (spec->fields[i].type) {
        case BB_T_UINT: ok = zcbor_uint32_put(st, v[i].u); break;
        case BB_T_INT: ok = zcbor_int32_put(st, v[i].i); break;
        case BB_T_BOOL: ok = zcbor_bool_put(st, v[i].u != 0); break;
        case BB_T_STR: ok = zcbor_tstr_encode_ptr(st, (const char *)v[i].p, v[i].len); break;
        default:
            if (v[i].p == NULL && spec->fields[i].nullable) {
                ok = zcbor_nil_put(st, NULL);
            } else {
                ok = zcbor_bstr_encode_ptr(st, v[i].p != NULL ? (const char *)v[i].p : "",
                                           v[i].p != NULL ? v[i].len : 0);
            }
            break;
        }
    }
    if (!ok) {
        /* Larger than any event can be: retrying cannot help, so it is a drop whatever the port. */
        bb_evq_note_drop(&bb_core_evq, spec->droppable);
        return -BB_STATUS_E2BIG;
    }
    return bb_evq_push(&bb_core_evq, spec->droppable, (uint8_t)(1 + spec->nfields), ev_scratch,
                       (size_t)(st->payload - ev_scratch));
}

static int emit(uint8_t code, const ev_val_t *v)
{
    bb_port_critical_enter();
    int rc = emit_locked(code, v);
    bb_port_critical_exit();
    return rc;
}

static uint16_t clamp16(uint16_t len, uint16_t max)
{
    return len > max ? max : len;
}

/* ---------------------------------------------------------------------------------------- */
/* Links, channels, questions                                                                 */
/* ---------------------------------------------------------------------------------------- */

static bb_link_t *link_find(uint16_t conn)
{
    for (unsigned i = 0; i < BB_MAX_CONNECTIONS; i++) {
        if (bb_core.links[i].used && bb_core.links[i].conn == conn) {
            return &bb_core.links[i];
        }
    }
    return NULL;
}

bool bb_core_conn_known(uint16_t conn)
{
    bb_port_critical_enter();
    bool known = link_find(conn) != NULL;
    bb_port_critical_exit();
    return known;
}

static void link_add(uint16_t conn, bool we_are_central)
{
    bb_link_t *l = link_find(conn);
    for (unsigned i = 0; l == NULL && i < BB_MAX_CONNECTIONS; i++) {
        if (!bb_core.links[i].used) {
            l = &bb_core.links[i];
        }
    }
    if (l != NULL) {
        l->used = true;
        l->conn = conn;
        l->we_are_central = we_are_central;
    }
}

static void link_remove(uint16_t conn)
{
    bb_link_t *l = link_find(conn);
    if (l != NULL) {
        l->used = false;
    }
    for (unsigned i = 0; i < BB_MAX_L2CAP_CHANNELS; i++) {
        if (bb_core.chans[i].used && bb_core.chans[i].conn == conn) {
            bb_core.chans[i].used = false;
        }
    }
}

static bb_chan_t *chan_find(uint16_t conn, uint16_t cid)
{
    for (unsigned i = 0; i < BB_MAX_L2CAP_CHANNELS; i++) {
        bb_chan_t *c = &bb_core.chans[i];
        if (c->used && c->conn == conn && c->cid == cid) {
            return c;
        }
    }
    return NULL;
}

bool bb_core_chan_known(uint16_t conn, uint16_t cid)
{
    bb_port_critical_enter();
    bool known = chan_find(conn, cid) != NULL;
    bb_port_critical_exit();
    return known;
}

void bb_core_links_clear(void)
{
    bb_port_critical_enter();
    memset(bb_core.links, 0, sizeof(bb_core.links));
    memset(bb_core.chans, 0, sizeof(bb_core.chans));
    bb_port_critical_exit();
}

bb_question_t *bb_core_question_find(uint32_t token)
{
    for (unsigned i = 0; i < BB_MAX_QUESTIONS; i++) {
        if (bb_core.questions[i].used && bb_core.questions[i].token == token) {
            return &bb_core.questions[i];
        }
    }
    return NULL;
}

void bb_core_question_answer(bb_question_t *q, const bb_answer_t *answer)
{
    bb_port_critical_enter();
    bb_question_kind_t kind = (bb_question_kind_t)q->kind;
    uint32_t ref = q->port_ref;
    q->used = false;
    bb_port_critical_exit();
    bb_port_answer(kind, ref, answer);
}

/* Safe defaults (docs/design.md): read allowed, L2CAP accepted, secret not found, not stored.
 * All of them are the zero answer. */
static void question_default(bb_question_t *q)
{
    bb_answer_t a = {.timed_out = true, .found = false, .u = 0, .data = NULL, .len = 0};
    bb_core_question_answer(q, &a);
}

void bb_core_questions_default_all(void)
{
    for (unsigned i = 0; i < BB_MAX_QUESTIONS; i++) {
        if (bb_core.questions[i].used) {
            question_default(&bb_core.questions[i]);
        }
    }
}

static void questions_expire(void)
{
    uint32_t now = bb_port_millis();
    for (unsigned i = 0; i < BB_MAX_QUESTIONS; i++) {
        bb_question_t *q = &bb_core.questions[i];
        if (q->used && now - q->since_ms >= BB_DEFAULTS_QUESTION_TIMEOUT_MS) {
            bb_core.n.question_timeouts++;
            question_default(q);
        }
    }
}

/* Open a question and send its event; v[0] receives the token. */
static int question_open(bb_question_kind_t kind, uint32_t port_ref, uint8_t code, ev_val_t *v)
{
    int rc = -BB_STATUS_ENOMEM;
    bb_port_critical_enter();
    for (unsigned i = 0; i < BB_MAX_QUESTIONS; i++) {
        bb_question_t *q = &bb_core.questions[i];
        if (q->used) {
            continue;
        }
        if (++bb_core.next_token == 0) {
            bb_core.next_token = 1;
        }
        v[0].u = bb_core.next_token;
        rc = emit_locked(code, v);
        if (rc == 0) {
            q->used = true;
            q->kind = (uint8_t)kind;
            q->token = bb_core.next_token;
            q->port_ref = port_ref;
            q->since_ms = bb_port_millis();
        }
        break;
    }
    bb_port_critical_exit();
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* State                                                                                      */
/* ---------------------------------------------------------------------------------------- */

void bb_config_defaults(bb_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->addr_mode = BB_ADDR_MODE_PUBLIC;
    strcpy(cfg->gap_name, "blebridge");
    cfg->appearance = 0;
    cfg->mtu = 256;             /* NimBLE's preferred MTU, which MicroPython reports by default */
    cfg->bond = false;
    cfg->mitm = false;
    cfg->io = BB_IO_NO_INPUT_OUTPUT;
    cfg->le_secure = false;
    cfg->tx_power = 0;
    cfg->read_request = false;
}

void bb_core_state_reset(void)
{
    bb_core.active = false;
    bb_core_links_clear();
    memset(bb_core.questions, 0, sizeof(bb_core.questions));
    bb_config_defaults(&bb_core.cfg);
    bb_core.rxbuf = 0;
    bb_core.scan_rssi_filter = false;
    bb_core.scan_prefix_len = 0;
    bb_core.bench_left = 0;
    bb_gatts_clear();
    bb_port_critical_enter();
    /* Drop counts survive in bb_core_evq's counters; the queued events are from before. */
    uint32_t ds = bb_core_evq.dropped_scan, dother = bb_core_evq.dropped_other;
    uint32_t peak = bb_core_evq.peak_bytes, seq = bb_core_evq.next_seq;
    uint32_t stalled = bb_core_evq.stalled;
    bb_evq_init(&bb_core_evq);
    bb_core_evq.port_holds_back = bb_port_caps()->holds_back_events;
    bb_core_evq.dropped_scan = ds;
    bb_core_evq.dropped_other = dother;
    bb_core_evq.stalled = stalled;
    bb_core_evq.peak_bytes = peak;
    bb_core_evq.next_seq = seq;
    bb_port_critical_exit();
}

void bb_core_init(void)
{
    memset(&bb_core, 0, sizeof(bb_core));
    bb_evq_init(&bb_core_evq);
    bb_frame_decoder_init(&bb_core_rxdec);
    bb_ring_init(&rsp_ring, rsp_buf, sizeof(rsp_buf));
    /* A lone delimiter goes out before BOOT. A link that survives a reset (a UART bridge, the
     * sim's pseudo-terminal) may have carried half a frame when the board reset; without it,
     * that half and BOOT would decode as one bad frame and the host would never see BOOT. */
    tx_buf[0] = 0x00;
    tx_len = 1;
    tx_off = 0;
    bb_core_state_reset();
    /* Ports start from the same settings the core reports (config_get before any config_set). */
    if (bb_port_config_apply(&bb_core.cfg) < 0) {
        bb_core.n.port_errors++;
    }
    bb_core.boot_id = bb_port_boot_id();
    bb_core.boot_ms = bb_port_millis();
    ev_val_t v[3] = {{.u = bb_core.boot_id}, {.u = BB_PROTO_MAJOR}, {.u = BB_PROTO_MINOR}};
    emit(BB_EV_BOOT, v);
}

/* ---------------------------------------------------------------------------------------- */
/* Transmit                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Hand the frame in flight to the transport. True when nothing is left in flight. */
static bool tx_flush(void)
{
    while (tx_off < tx_len) {
        int w = bb_port_transport_write(tx_buf + tx_off, tx_len - tx_off);
        if (w < 0) {
            bb_core.n.port_errors++;
            return false;
        }
        if (w == 0) {
            return false;
        }
        tx_off += (size_t)w > tx_len - tx_off ? tx_len - tx_off : (size_t)w;
    }
    if (tx_len != 0) {
        if (tx_len > 1) {
            bb_core.n.frames_tx++;  /* not the boot delimiter */
        }
        tx_len = tx_off = 0;
    }
    return true;
}

static bool drop_report_due(uint32_t now)
{
    return (bb_core_evq.unreported_scan != 0 || bb_core_evq.unreported_other != 0)
           && (!bb_core.drop_reported
               || now - bb_core.drop_report_ms >= BB_DEFAULTS_DIAG_SCAN_DROP_EVENT_MS);
}

/* Append `code, fields` items as one event array; false when it does not fit. */
static size_t put_head(uint8_t *at, size_t room, uint8_t major, uint32_t value)
{
    return bb_cbor_head(at, room, major, value);
}

/* BENCH events [40, seq, payload]; payload byte i is (seq + i) mod 256 so a receiver can check
 * it. Returns bytes written to body. */
static size_t bench_fill(uint8_t *body, size_t cap, unsigned *count)
{
    size_t used = 0;
    while (bb_core.bench_left != 0) {
        uint8_t h[16];
        size_t n = put_head(h, sizeof(h), 4, 3);
        n += put_head(h + n, sizeof(h) - n, 0, BB_EV_BENCH);
        n += put_head(h + n, sizeof(h) - n, 0, bb_core.bench_seq);
        n += put_head(h + n, sizeof(h) - n, 2, bb_core.bench_len);
        if (used + n + bb_core.bench_len > cap) {
            break;
        }
        memcpy(body + used, h, n);
        used += n;
        for (uint16_t i = 0; i < bb_core.bench_len; i++) {
            body[used++] = (uint8_t)(bb_core.bench_seq + i);
        }
        bb_core.bench_seq++;
        bb_core.bench_left--;
        (*count)++;
    }
    return used;
}

/* A response ring entry's nitems: the call raised events; its seq is the event queue's next
 * sequence number when the call returned, so the events numbered below it go first. */
#define RSP_AFTER_EVENTS 1u

static uint32_t evq_next_seq(void)
{
    bb_port_critical_enter();
    uint32_t seq = bb_core_evq.next_seq;
    bb_port_critical_exit();
    return seq;
}

/* Build the next event frame's CBOR in `work`: one event as [2, seq, code, fields...], several
 * as [3, seq, [code, fields...], ...]. Returns its length (0: nothing to send) and start.
 * With `before` only events numbered below *before go (those ahead of a response), no BENCH. */
static size_t batch_build(const uint8_t **start, const uint32_t *before)
{
    uint8_t *body = work + BATCH_ROOM;
    const size_t cap = sizeof(work) - BATCH_ROOM;
    size_t used = 0;
    unsigned count = 0;
    size_t first_head = 0;
    uint8_t first_items = 0;
    uint32_t now = bb_port_millis();

    bb_port_critical_enter();
    if (drop_report_due(now)) {
        uint8_t *p = body;
        p += put_head(p, 8, 4, 3);
        p += put_head(p, 8, 0, BB_EV_EVENTS_DROPPED);
        p += put_head(p, 8, 0, bb_core_evq.unreported_scan);
        p += put_head(p, 8, 0, bb_core_evq.unreported_other);
        used = (size_t)(p - body);
        first_head = 1;
        first_items = 3;
        count = 1;
        bb_core_evq.unreported_scan = bb_core_evq.unreported_other = 0;
        bb_core.drop_reported = true;
        bb_core.drop_report_ms = now;
    }
    bb_port_critical_exit();

    for (;;) {
        bb_port_critical_enter();
        bb_ring_entry_t e;
        bool have = bb_evq_peek(&bb_core_evq, &e);
        uint8_t h[3];
        size_t hl = have ? put_head(h, sizeof(h), 4, e.nitems) : 0;
        if (!have || used + hl + e.len > cap || (before != NULL && (int32_t)(e.seq - *before) >= 0)) {
            bb_port_critical_exit();
            break;
        }
        memcpy(body + used, h, hl);
        bb_evq_pop(&bb_core_evq, body + used + hl);
        bb_port_critical_exit();
        if (count == 0) {
            first_head = hl;
            first_items = e.nitems;
        }
        used += hl + e.len;
        count++;
        bb_core.n.events_tx++;
    }
    if (count == 0 && before == NULL) {
        used = bench_fill(body, cap, &count);
        first_head = 1;
        first_items = 3;
    }
    if (count == 0) {
        return 0;
    }
    /* Every frame that carries events is numbered, so the host can count frames lost on the
     * link; the number is taken here, when the frame is built, in the order frames go out. */
    uint32_t seq = bb_core.event_seq;
    bb_core.event_seq = (seq + 1) % BB_EVENT_SEQ_MOD;
    uint8_t h[BATCH_ROOM];
    size_t hl;
    if (count == 1) {
        /* Re-head the single event: [code, fields...] becomes [2, seq, code, fields...]. */
        hl = put_head(h, sizeof(h), 4, (uint32_t)first_items + 2);
        h[hl++] = BB_MSG_EVT;
        hl += put_head(h + hl, sizeof(h) - hl, 0, seq);
        uint8_t *s = body + first_head - hl;
        memcpy(s, h, hl);
        *start = s;
        return used - first_head + hl;
    }
    hl = put_head(h, sizeof(h), 4, count + 2);
    h[hl++] = BB_MSG_EVT_BATCH;
    hl += put_head(h + hl, sizeof(h) - hl, 0, seq);
    memcpy(body - hl, h, hl);
    *start = body - hl;
    return used + hl;
}

static bool tx_next_frame(void)
{
    const uint8_t *p = work;
    size_t n = 0;
    bb_ring_entry_t e;
    if (bb_ring_peek(&rsp_ring, &e)) {
        if (e.nitems == RSP_AFTER_EVENTS) {
            n = batch_build(&p, &e.seq);
        }
        if (n == 0) {
            p = work;
            bb_ring_pop(&rsp_ring, work);
            n = e.len;
        }
    } else {
        n = batch_build(&p, NULL);
    }
    if (n == 0) {
        return false;
    }
    tx_len = bb_frame_encode(p, n, tx_buf, sizeof(tx_buf));
    tx_off = 0;
    return tx_len != 0;
}

static void pump(void)
{
    for (unsigned i = 0; i < BB_POLL_MAX_FRAMES; i++) {
        if (!tx_flush() || !tx_next_frame()) {
            return;
        }
    }
    tx_flush();
}

void bb_core_poll(void)
{
    questions_expire();
    pump();
}

bool bb_core_tx_pending(void)
{
    return tx_len != 0 || rsp_ring.count != 0 || !bb_evq_empty(&bb_core_evq)
           || bb_core.bench_left != 0 || drop_report_due(bb_port_millis());
}

/* ---------------------------------------------------------------------------------------- */
/* Receive                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void count_status(int s)
{
    switch (s) {
    case BB_STATUS_MALFORMED: bb_core.n.malformed++; break;
    case BB_STATUS_UNKNOWN_METHOD: bb_core.n.unknown_method++; break;
    case BB_STATUS_BAD_ARG_COUNT:
    case BB_STATUS_BAD_ARG_TYPE: bb_core.n.bad_args++; break;
    case BB_STATUS_VALUE_TOO_LARGE: bb_core.n.too_large++; break;
    case BB_STATUS_UNKNOWN_HANDLE: bb_core.n.unknown_handle++; break;
    case BB_STATUS_NOT_ACTIVE: bb_core.n.not_active++; break;
    default: break;
    }
}

static void on_frame(void *ctx, const uint8_t *payload, size_t len)
{
    (void)ctx;
    static bb_request_t req;
    bool id_known;

    /* Make room for a largest response first: `work` is about to hold this one. */
    if (rsp_ring.cap - rsp_ring.used < BB_MAX_FRAME + BB_RING_HDR) {
        pump();
    }
    uint32_t seq_before = evq_next_seq();
    int status = bb_request_parse(payload, len, &req, &id_known);
    if (status == BB_STATUS_OK) {
        status = bb_request_validate(&req);
    }
    uint8_t *res_start = work + RSP_PREFIX_ROOM;
    size_t res_len = 0;
    if (status == BB_STATUS_OK) {
        ZCBOR_STATE_E(res, RSP_BACKUPS, res_start, sizeof(work) - RSP_PREFIX_ROOM, 0);
        status = bb_dispatch(&req, res);
        res_len = (size_t)(res->payload - res_start);
        if (status == BB_STATUS_OK && res_len == 0) {
            status = BB_STATUS_ENOMEM;  /* the handler wrote no result: it did not fit */
        }
    }
    count_status(status);
    if (status != BB_STATUS_OK) {
        res_start[0] = 0xF6;  /* null */
        res_len = 1;
    }
    uint8_t pre[RSP_PREFIX_ROOM];
    ZCBOR_STATE_E(ps, 0, pre + 1, sizeof(pre) - 1, 0);
    pre[0] = 0x84;
    bool ok = zcbor_uint32_put(ps, BB_MSG_RSP)
              && (id_known ? zcbor_uint32_put(ps, req.id) : zcbor_nil_put(ps, NULL))
              && zcbor_uint32_put(ps, (uint32_t)status);
    size_t pl = (size_t)(ps->payload - pre);
    if (!ok) {
        return;
    }
    memcpy(res_start - pl, pre, pl);
    uint32_t seq_after = evq_next_seq();
    bb_ring_entry_t e = {(uint16_t)(pl + res_len), seq_after != seq_before ? RSP_AFTER_EVENTS : 0u,
                         seq_after};
    if (!bb_ring_push(&rsp_ring, &e, res_start - pl)) {
        bb_core.n.responses_dropped++;
    }
}

void bb_core_rx(const uint8_t *data, size_t len)
{
    bb_frame_decoder_feed(&bb_core_rxdec, data, len, on_frame, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Events from ports                                                                          */
/* ---------------------------------------------------------------------------------------- */

static ev_val_t addr_val(const bb_addr_t *a)
{
    ev_val_t v = {.p = a->addr, .len = BB_ADDR_LEN};
    return v;
}

static ev_val_t uuid_val(const bb_uuid_t *u)
{
    ev_val_t v = {.p = u->bytes, .len = u->len};
    return v;
}

static int on_connect(uint8_t code, uint16_t conn, const bb_addr_t *peer, bool we_are_central)
{
    ev_val_t v[3] = {{.u = conn}, {.u = peer->type}, addr_val(peer)};
    bb_port_critical_enter();
    link_add(conn, we_are_central);
    int rc = emit_locked(code, v);
    bb_port_critical_exit();
    return rc;
}

static int on_disconnect(uint8_t code, uint16_t conn, const bb_addr_t *peer, uint8_t reason)
{
    ev_val_t v[4] = {{.u = conn}, {.u = peer->type}, addr_val(peer), {.u = reason}};
    bb_port_critical_enter();
    link_remove(conn);
    int rc = emit_locked(code, v);
    bb_port_critical_exit();
    return rc;
}

int bb_on_central_connect(uint16_t conn, const bb_addr_t *peer)
{
    return on_connect(BB_EV_CENTRAL_CONNECT, conn, peer, false);
}

int bb_on_central_disconnect(uint16_t conn, const bb_addr_t *peer, uint8_t reason)
{
    return on_disconnect(BB_EV_CENTRAL_DISCONNECT, conn, peer, reason);
}

int bb_on_peripheral_connect(uint16_t conn, const bb_addr_t *peer)
{
    return on_connect(BB_EV_PERIPHERAL_CONNECT, conn, peer, true);
}

int bb_on_peripheral_disconnect(uint16_t conn, const bb_addr_t *peer, uint8_t reason)
{
    return on_disconnect(BB_EV_PERIPHERAL_DISCONNECT, conn, peer, reason);
}

int bb_on_advertise_done(uint8_t reason)
{
    ev_val_t v[1] = {{.u = reason}};
    return emit(BB_EV_ADVERTISE_DONE, v);
}

/* CircuitPython's scan prefix filter: `prefix` is a sequence of (length, bytes) entries, and a
 * report passes when one of its AD structures (type byte onwards) starts with one entry. */
static bool scan_prefix_matches(const uint8_t *data, uint16_t len)
{
    const uint8_t *pf = bb_core.scan_prefix;
    size_t pf_len = bb_core.scan_prefix_len;
    for (size_t i = 0; i < pf_len;) {
        size_t n = pf[i++];
        if (n > pf_len - i) {
            return false;
        }
        for (size_t j = 0; j < len;) {
            size_t ad_len = data[j++];
            if (ad_len == 0 || ad_len > (size_t)(len - j)) {
                break;
            }
            if (ad_len >= n && memcmp(data + j, pf + i, n) == 0) {
                return true;
            }
            j += ad_len;
        }
        i += n;
    }
    return false;
}

int bb_on_scan_result(const bb_addr_t *addr, uint8_t adv_type, int8_t rssi, const uint8_t *data,
                      uint16_t len)
{
    if (bb_core.scan_rssi_filter && rssi < bb_core.scan_rssi_min) {
        return 0;
    }
    len = clamp16(len, BB_MAX_ADV_EXT);
    if (bb_core.scan_prefix_len != 0 && !scan_prefix_matches(data, len)) {
        return 0;
    }
    ev_val_t v[5] = {{.u = addr->type}, addr_val(addr), {.u = adv_type}, {.i = rssi},
                     {.p = data, .len = len}};
    return emit(BB_EV_SCAN_RESULT, v);
}

int bb_on_scan_done(void)
{
    return emit(BB_EV_SCAN_DONE, NULL);
}

int bb_on_connection_update(uint16_t conn, uint16_t interval_1250us, uint16_t latency,
                            uint16_t supervision_timeout_10ms, uint8_t status)
{
    ev_val_t v[5] = {{.u = conn}, {.u = interval_1250us}, {.u = latency},
                     {.u = supervision_timeout_10ms}, {.u = status}};
    return emit(BB_EV_CONNECTION_UPDATE, v);
}

int bb_on_gatts_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len,
                      uint16_t offset)
{
    ev_val_t v[3] = {{.u = conn}, {.u = value_handle}, {.p = data, .len = clamp16(len, BB_MAX_ATTR_LEN)}};
    bb_port_critical_enter();
    bb_attr_t *a = bb_gatts_attr(value_handle);
    uint16_t prev_len = a != NULL ? a->len : 0;
    if (a != NULL) {
        uint16_t stored = bb_gatts_peer_write(a, data, len, offset);
        /* Normal mode reports the attribute's new value; append mode reports what this write
         * added (the host keeps appending, as gatts_read would return it). */
        if (a->append) {
            v[2].len = stored;
        } else {
            v[2].p = bb_gatts_value(a);
            v[2].len = a->len;
        }
    }
    int rc = emit_locked(BB_EV_GATTS_WRITE, v);
    if (rc != 0 && a != NULL && a->append) {
        /* Not reported, so not kept: a port that holds the write back and delivers it again
         * must not append it twice. (Normal mode is idempotent: the same bytes land again.) */
        a->len = prev_len;
    }
    bb_port_critical_exit();
    return rc;
}

int bb_on_gatts_indicate_done(uint16_t conn, uint16_t value_handle, uint8_t status)
{
    ev_val_t v[3] = {{.u = conn}, {.u = value_handle}, {.u = status}};
    return emit(BB_EV_GATTS_INDICATE_DONE, v);
}

int bb_on_mtu_exchanged(uint16_t conn, uint16_t mtu)
{
    ev_val_t v[2] = {{.u = conn}, {.u = mtu}};
    return emit(BB_EV_MTU_EXCHANGED, v);
}

int bb_on_gattc_service_result(uint16_t conn, uint16_t start, uint16_t end, const bb_uuid_t *uuid)
{
    ev_val_t v[4] = {{.u = conn}, {.u = start}, {.u = end}, uuid_val(uuid)};
    return emit(BB_EV_GATTC_SERVICE_RESULT, v);
}

static int done_event(uint8_t code, uint16_t conn, uint16_t status)
{
    ev_val_t v[2] = {{.u = conn}, {.u = status}};
    return emit(code, v);
}

int bb_on_gattc_service_done(uint16_t conn, uint16_t status)
{
    return done_event(BB_EV_GATTC_SERVICE_DONE, conn, status);
}

int bb_on_gattc_characteristic_result(uint16_t conn, uint16_t def_handle, uint16_t value_handle,
                                      uint8_t properties, const bb_uuid_t *uuid)
{
    ev_val_t v[5] = {{.u = conn}, {.u = def_handle}, {.u = value_handle}, {.u = properties},
                     uuid_val(uuid)};
    return emit(BB_EV_GATTC_CHARACTERISTIC_RESULT, v);
}

int bb_on_gattc_characteristic_done(uint16_t conn, uint16_t status)
{
    return done_event(BB_EV_GATTC_CHARACTERISTIC_DONE, conn, status);
}

int bb_on_gattc_descriptor_result(uint16_t conn, uint16_t handle, const bb_uuid_t *uuid)
{
    ev_val_t v[3] = {{.u = conn}, {.u = handle}, uuid_val(uuid)};
    return emit(BB_EV_GATTC_DESCRIPTOR_RESULT, v);
}

int bb_on_gattc_descriptor_done(uint16_t conn, uint16_t status)
{
    return done_event(BB_EV_GATTC_DESCRIPTOR_DONE, conn, status);
}

static int handle_data_event(uint8_t code, uint16_t conn, uint16_t handle, const uint8_t *data,
                             uint16_t len, uint16_t max)
{
    ev_val_t v[3] = {{.u = conn}, {.u = handle}, {.p = data, .len = clamp16(len, max)}};
    return emit(code, v);
}

static int handle_status_event(uint8_t code, uint16_t conn, uint16_t handle, uint16_t status)
{
    ev_val_t v[3] = {{.u = conn}, {.u = handle}, {.u = status}};
    return emit(code, v);
}

int bb_on_gattc_read_result(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    return handle_data_event(BB_EV_GATTC_READ_RESULT, conn, value_handle, data, len, BB_MAX_ATTR_LEN);
}

int bb_on_gattc_read_done(uint16_t conn, uint16_t value_handle, uint16_t status)
{
    return handle_status_event(BB_EV_GATTC_READ_DONE, conn, value_handle, status);
}

int bb_on_gattc_write_done(uint16_t conn, uint16_t value_handle, uint16_t status)
{
    return handle_status_event(BB_EV_GATTC_WRITE_DONE, conn, value_handle, status);
}

int bb_on_gattc_notify(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    return handle_data_event(BB_EV_GATTC_NOTIFY, conn, value_handle, data, len, BB_MAX_ATTR_LEN);
}

int bb_on_gattc_indicate(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    return handle_data_event(BB_EV_GATTC_INDICATE, conn, value_handle, data, len, BB_MAX_ATTR_LEN);
}

int bb_on_l2cap_connect(uint16_t conn, uint16_t cid, uint16_t psm, uint16_t our_mtu,
                        uint16_t peer_mtu)
{
    ev_val_t v[5] = {{.u = conn}, {.u = cid}, {.u = psm}, {.u = our_mtu}, {.u = peer_mtu}};
    bb_port_critical_enter();
    if (chan_find(conn, cid) == NULL) {
        for (unsigned i = 0; i < BB_MAX_L2CAP_CHANNELS; i++) {
            bb_chan_t *c = &bb_core.chans[i];
            if (!c->used) {
                c->used = true;
                c->conn = conn;
                c->cid = cid;
                break;
            }
        }
    }
    int rc = emit_locked(BB_EV_L2CAP_CONNECT, v);
    bb_port_critical_exit();
    return rc;
}

int bb_on_l2cap_disconnect(uint16_t conn, uint16_t cid, uint16_t psm, uint16_t status)
{
    ev_val_t v[4] = {{.u = conn}, {.u = cid}, {.u = psm}, {.u = status}};
    bb_port_critical_enter();
    bb_chan_t *c = chan_find(conn, cid);
    if (c != NULL) {
        c->used = false;
    }
    int rc = emit_locked(BB_EV_L2CAP_DISCONNECT, v);
    bb_port_critical_exit();
    return rc;
}

int bb_on_l2cap_recv(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len)
{
    return handle_data_event(BB_EV_L2CAP_RECV, conn, cid, data, len, BB_MAX_L2CAP_SDU);
}

int bb_on_l2cap_send_ready(uint16_t conn, uint16_t cid, uint16_t status)
{
    return handle_status_event(BB_EV_L2CAP_SEND_READY, conn, cid, status);
}

int bb_on_encryption_update(uint16_t conn, bool encrypted, bool authenticated, bool bonded,
                            uint8_t key_size)
{
    ev_val_t v[5] = {{.u = conn}, {.u = encrypted}, {.u = authenticated}, {.u = bonded},
                     {.u = key_size}};
    return emit(BB_EV_ENCRYPTION_UPDATE, v);
}

int bb_on_passkey_action(uint16_t conn, uint8_t action, uint32_t passkey)
{
    ev_val_t v[3] = {{.u = conn}, {.u = action}, {.u = passkey}};
    return emit(BB_EV_PASSKEY_ACTION, v);
}

int bb_on_question_read(uint32_t port_ref, uint16_t conn, uint16_t value_handle)
{
    ev_val_t v[3] = {{0}, {.u = conn}, {.u = value_handle}};
    return question_open(BB_QUESTION_READ, port_ref, BB_EV_GATTS_READ_REQUEST, v);
}

int bb_on_question_l2cap_accept(uint32_t port_ref, uint16_t conn, uint16_t cid, uint16_t psm,
                                uint16_t our_mtu, uint16_t peer_mtu)
{
    ev_val_t v[6] = {{0}, {.u = conn}, {.u = cid}, {.u = psm}, {.u = our_mtu}, {.u = peer_mtu}};
    return question_open(BB_QUESTION_L2CAP_ACCEPT, port_ref, BB_EV_L2CAP_ACCEPT, v);
}

int bb_on_question_get_secret(uint32_t port_ref, uint8_t sec_type, uint8_t index,
                              const uint8_t *key, uint16_t key_len)
{
    ev_val_t v[4] = {{0}, {.u = sec_type}, {.u = index},
                     {.p = key, .len = clamp16(key_len, BB_MAX_SECRET)}};
    return question_open(BB_QUESTION_GET_SECRET, port_ref, BB_EV_GET_SECRET, v);
}

int bb_on_question_set_secret(uint32_t port_ref, uint8_t sec_type, const uint8_t *key,
                              uint16_t key_len, const uint8_t *value, uint16_t value_len)
{
    static const uint8_t no_key[1];
    ev_val_t v[4] = {{0}, {.u = sec_type},
                     {.p = key != NULL ? key : no_key, .len = key != NULL ? clamp16(key_len, BB_MAX_SECRET) : 0},
                     {.p = value, .len = clamp16(value_len, BB_MAX_SECRET)}};
    return question_open(BB_QUESTION_SET_SECRET, port_ref, BB_EV_SET_SECRET, v);
}

int bb_log(uint8_t level, const char *text)
{
    size_t n = strlen(text);
    ev_val_t v[2] = {{.u = level},
                     {.p = (const uint8_t *)text, .len = (uint16_t)(n > BB_LOG_MAX_TEXT ? BB_LOG_MAX_TEXT : n)}};
    return emit(BB_EV_LOG, v);
}

const uint8_t *bb_core_gatts_value(uint16_t value_handle, uint16_t *len, uint16_t *max_len)
{
    bb_attr_t *a = bb_gatts_attr(value_handle);
    if (a == NULL) {
        return NULL;
    }
    if (len != NULL) {
        *len = a->len;
    }
    if (max_len != NULL) {
        *max_len = a->cap;
    }
    return bb_gatts_value(a);
}
