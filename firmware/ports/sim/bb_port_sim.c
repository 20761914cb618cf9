/*
 * Port sim: every bb_port_* call is forwarded to the Bumble air (host/blebridge/sim/air.py)
 * over a Unix stream socket, with the host link's framing (bb_frame.h) and CBOR (zcbor):
 *   request  [0, id, "op", args...]        this port -> air
 *   response [1, id, errno, result]        air -> this port; errno 0 or negative
 *   event    [2, "NAME", fields...]        air -> this port
 * The op and event list is in README.md beside this file.
 *
 * A port call blocks until its response (BB_SIM_AIR_CALL_TIMEOUT_MS, then -ETIMEDOUT). Events
 * that arrive meanwhile are queued and delivered through bb_on_* from the main loop
 * (bb_sim_deliver_events), never from inside a port call, so the core is not re-entered.
 * When the core's event queue is full (bb_on_* returns -ENOMEM) the event stays queued and is
 * retried; when the queue here is half full, main.c stops reading the air (back-pressure).
 *
 * Single-threaded: the critical section is empty.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bb_frame.h"
#include "bb_port.h"
#include "bb_sim.h"
#include "zcbor_decode.h"
#include "zcbor_encode.h"

#define AIR_MSG_REQ 0
#define AIR_MSG_RSP 1
#define AIR_MSG_EVT 2
#define AIR_MSG_POST 3          /* a request that gets no response (README.md, "posts") */
#define AIR_MAX_FIELDS 8        /* fields of the longest air event (L2CAP_ACCEPT: 6) */
#define AIR_CBOR_DEPTH 8        /* list nesting of gatts_register: request 6, result 5 */
#define AIR_CONNECT_TRIES 40    /* x 50 ms: the air may still be binding its socket */
#define AIR_CONNECT_WAIT_MS 50
_Static_assert(BB_SIM_AIR_ACK_MIN_BYTES + BB_SIM_AIR_MSG_BUF + 2 <= BB_SIM_AIR_WINDOW_BYTES,
               "unacknowledged bytes must leave the air's window room for one more message");
#define AIR_ACK_CBOR_MAX 24     /* [3, "ack", bytes]: 1 + 1 + 4 + 5, room to spare */

typedef bool (*result_fn_t)(zcbor_state_t *zs, void *ctx);

static struct {
    const char *socket_path;
    const char *name;
    int pty_fd;
    int air_fd;
    bool host_present;
    uint32_t boot_id;
    uint32_t next_id;
    struct timespec t0;
    /* the call waiting for its response */
    bool waiting;
    uint32_t wait_id;
    bool got;
    int32_t err;
    result_fn_t result_fn;
    void *result_ctx;
    bool result_ok;
    /* events held for delivery: records [len lo, len hi, payload...] in evq[evq_off..evq_used) */
    size_t evq_off;
    size_t evq_used;
    uint32_t events_lost;
    bool delivering;    /* evq records must not move while one is being delivered */
    uint32_t consumed;  /* bytes of evq records (2 + payload) delivered, not yet acknowledged */
} sim = {.pty_fd = -1, .air_fd = -1, .host_present = false};

static bb_frame_decoder_t air_dec;
static uint8_t msg_buf[BB_SIM_AIR_MSG_BUF];
static uint8_t wire_buf[BB_FRAME_WIRE_MAX(BB_SIM_AIR_MSG_BUF)];
static uint8_t evq[BB_SIM_AIR_EVQ_BYTES];

/* ------------------------------------------------------------------------------------------ */
/* Air connection                                                                             */
/* ------------------------------------------------------------------------------------------ */

void bb_sim_configure(const char *air_socket, const char *name, int pty_master_fd)
{
    sim.socket_path = air_socket;
    sim.name = name;
    sim.pty_fd = pty_master_fd;
}

int bb_sim_air_fd(void)
{
    return sim.air_fd;
}

void bb_sim_set_host_present(bool present)
{
    sim.host_present = present;
}

void bb_sim_new_boot_id(void)
{
    uint32_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id || id == 0) {
        id = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16) ^ (sim.boot_id + 1u);
    }
    sim.boot_id = id;
}

static void evq_push(const uint8_t *payload, size_t len)
{
    if (sim.evq_used + 2 + len > sizeof evq && sim.evq_off > 0 && !sim.delivering) {
        memmove(evq, evq + sim.evq_off, sim.evq_used - sim.evq_off);
        sim.evq_used -= sim.evq_off;
        sim.evq_off = 0;
    }
    if (len > 0xFFFF || sim.evq_used + 2 + len > sizeof evq) {
        /* Not reachable while the air keeps to its window; counted (and acknowledged, so the
         * window does not shrink for good) if it happens. */
        sim.events_lost++;
        sim.consumed += (uint32_t)(2 + len);
        fprintf(stderr, "bb_sim %s: air event queue full, %u events lost\n", sim.name,
                (unsigned)sim.events_lost);
        return;
    }
    evq[sim.evq_used] = (uint8_t)(len & 0xFF);
    evq[sim.evq_used + 1] = (uint8_t)(len >> 8);
    memcpy(evq + sim.evq_used + 2, payload, len);
    sim.evq_used += 2 + len;
}

bool bb_sim_events_queued(void)
{
    return sim.evq_off < sim.evq_used;
}

bool bb_sim_backlogged(void)
{
    return sim.evq_used - sim.evq_off > sizeof evq / 2;
}

static void on_air_frame(void *ctx, const uint8_t *payload, size_t len)
{
    (void)ctx;
    uint32_t kind = 0;
    uint32_t id = 0;
    ZCBOR_STATE_D(zs, AIR_CBOR_DEPTH, payload, len, 1, 0);
    if (!zcbor_list_start_decode(zs) || !zcbor_uint32_decode(zs, &kind)) {
        return;
    }
    if (kind == AIR_MSG_EVT) {
        evq_push(payload, len);
        return;
    }
    if (kind != AIR_MSG_RSP || !zcbor_uint32_decode(zs, &id) || !sim.waiting || id != sim.wait_id) {
        return; /* a response to a call that timed out */
    }
    int32_t err = -EIO;
    if (!zcbor_int32_decode(zs, &err)) {
        err = -EIO;
    }
    sim.err = err;
    sim.result_ok = err != 0 || sim.result_fn == NULL || sim.result_fn(zs, sim.result_ctx);
    sim.got = true;
}

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ms = (int64_t)(ts.tv_sec - sim.t0.tv_sec) * 1000 + (ts.tv_nsec - sim.t0.tv_nsec) / 1000000;
    return (uint32_t)ms;
}

bool bb_sim_air_read(void)
{
    uint8_t buf[4096];
    if (sim.air_fd < 0) {
        return false;
    }
    ssize_t n = read(sim.air_fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return true;
    }
    if (n <= 0) {
        close(sim.air_fd);
        sim.air_fd = -1;
        return false;
    }
    bb_sim_air_feed(buf, (size_t)n);
    return true;
}

void bb_sim_air_feed(const uint8_t *data, size_t len)
{
    bb_frame_decoder_feed(&air_dec, data, len, on_air_frame, NULL);
}

void bb_sim_air_attach(int fd)
{
    bb_frame_decoder_init(&air_dec);
    sim.air_fd = fd;
    sim.next_id = 0;
}

static bool write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, BB_SIM_AIR_CALL_TIMEOUT_MS) <= 0) {
                return false;
            }
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Send the request encoded in msg_buf[0..cbor_len) and wait for its response. */
static int air_call(size_t cbor_len, result_fn_t result_fn, void *ctx)
{
    if (sim.air_fd < 0) {
        return -EIO;
    }
    size_t n = bb_frame_encode(msg_buf, cbor_len, wire_buf, sizeof wire_buf);
    if (n == 0) {
        return -E2BIG;
    }
    sim.waiting = true;
    sim.got = false;
    sim.result_fn = result_fn;
    sim.result_ctx = ctx;
    if (!write_all(sim.air_fd, wire_buf, n)) {
        sim.waiting = false;
        return -EIO;
    }
    uint32_t start = now_ms();
    while (!sim.got) {
        uint32_t elapsed = now_ms() - start;
        if (elapsed >= BB_SIM_AIR_CALL_TIMEOUT_MS) {
            sim.waiting = false;
            return -ETIMEDOUT;
        }
        struct pollfd pfd = {.fd = sim.air_fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(BB_SIM_AIR_CALL_TIMEOUT_MS - elapsed));
        if (r < 0 && errno != EINTR) {
            break;
        }
        if (r > 0 && !bb_sim_air_read()) {
            break;
        }
    }
    sim.waiting = false;
    if (!sim.got) {
        return sim.air_fd < 0 ? -EIO : -ETIMEDOUT;
    }
    if (sim.err != 0) {
        return sim.err < 0 ? sim.err : -sim.err;
    }
    return sim.result_ok ? 0 : -EIO;
}

/* Send the post encoded in msg_buf[0..cbor_len): nothing waits for the air. Blocks only while
 * the socket is full (the air is behind), as a radio's TX queue holds its sender back. */
static int air_post(size_t cbor_len)
{
    if (sim.air_fd < 0) {
        return -EIO;
    }
    size_t n = bb_frame_encode(msg_buf, cbor_len, wire_buf, sizeof wire_buf);
    if (n == 0) {
        return -E2BIG;
    }
    return write_all(sim.air_fd, wire_buf, n) ? 0 : -EIO;
}

/* Request building: REQ_BEGIN declares the encoder state `zs` over msg_buf. */
#define REQ_BEGIN(op)                                                                   \
    ZCBOR_STATE_E(zs, AIR_CBOR_DEPTH, msg_buf, sizeof msg_buf, 1);                      \
    bool ok = req_head(zs, (op))

static bool req_head(zcbor_state_t *zs, const char *op)
{
    sim.next_id++;
    sim.wait_id = sim.next_id;
    return zcbor_list_start_encode(zs, BB_MAX_ARGS + 3) && zcbor_uint32_put(zs, AIR_MSG_REQ)
           && zcbor_uint32_put(zs, sim.wait_id) && zcbor_tstr_encode_ptr(zs, op, strlen(op));
}

static int req_end(zcbor_state_t *zs, bool ok, result_fn_t fn, void *ctx)
{
    ok = ok && zcbor_list_end_encode(zs, BB_MAX_ARGS + 3);
    if (!ok) {
        return -E2BIG;
    }
    return air_call((size_t)(zs->payload - msg_buf), fn, ctx);
}

/* Post building (ops whose outcome the core already knows, see README.md): POST_BEGIN declares
 * `zs` over msg_buf, post_end sends it. */
#define POST_BEGIN(op)                                                                  \
    ZCBOR_STATE_E(zs, AIR_CBOR_DEPTH, msg_buf, sizeof msg_buf, 1);                      \
    bool ok = zcbor_list_start_encode(zs, BB_MAX_ARGS + 2) && zcbor_uint32_put(zs, AIR_MSG_POST) \
              && zcbor_tstr_encode_ptr(zs, (op), strlen(op))

static int post_end(zcbor_state_t *zs, bool ok)
{
    ok = ok && zcbor_list_end_encode(zs, BB_MAX_ARGS + 2);
    if (!ok) {
        return -E2BIG;
    }
    return air_post((size_t)(zs->payload - msg_buf));
}

static bool put_bytes(zcbor_state_t *zs, const uint8_t *p, size_t len)
{
    if (p == NULL) {
        return zcbor_nil_put(zs, NULL);
    }
    return zcbor_bstr_encode_ptr(zs, (const char *)p, len);
}

static bool put_uuid(zcbor_state_t *zs, const bb_uuid_t *uuid)
{
    if (uuid == NULL) {
        return zcbor_nil_put(zs, NULL);
    }
    return zcbor_bstr_encode_ptr(zs, (const char *)uuid->bytes, uuid->len);
}

/* An op with only unsigned arguments and no result. */
static int call_u(const char *op, int argc, uint32_t a, uint32_t b, uint32_t c)
{
    REQ_BEGIN(op);
    uint32_t args[3] = {a, b, c};
    for (int i = 0; i < argc; i++) {
        ok = ok && zcbor_uint32_put(zs, args[i]);
    }
    return req_end(zs, ok, NULL, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Platform                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static bool decode_addr(zcbor_state_t *zs, void *ctx)
{
    bb_addr_t *out = ctx;
    uint32_t type = 0;
    struct zcbor_string a;
    if (!zcbor_list_start_decode(zs) || !zcbor_uint32_decode(zs, &type)
        || !zcbor_bstr_decode(zs, &a) || a.len != BB_ADDR_LEN) {
        return false;
    }
    out->type = (uint8_t)type;
    memcpy(out->addr, a.value, BB_ADDR_LEN);
    return zcbor_list_end_decode(zs);
}

int bb_port_init(void)
{
    clock_gettime(CLOCK_MONOTONIC, &sim.t0);
    bb_sim_new_boot_id();
    bb_frame_decoder_init(&air_dec);
    if (sim.socket_path == NULL || sim.name == NULL) {
        return -EINVAL;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sim.socket_path) >= sizeof sa.sun_path) {
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, sim.socket_path);
    int last_err = ECONNREFUSED;
    for (int i = 0; i < AIR_CONNECT_TRIES; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return -errno;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            sim.air_fd = fd;
            break;
        }
        last_err = errno;
        close(fd);
        struct timespec wait = {.tv_sec = 0, .tv_nsec = AIR_CONNECT_WAIT_MS * 1000000L};
        nanosleep(&wait, NULL);
    }
    if (sim.air_fd < 0) {
        return -last_err;
    }
    bb_addr_t addr;
    REQ_BEGIN("hello");
    ok = ok && zcbor_tstr_encode_ptr(zs, sim.name, strlen(sim.name));
    return req_end(zs, ok, decode_addr, &addr);
}

const bb_port_caps_t *bb_port_caps(void)
{
    static const bb_port_caps_t caps = {
        .board = "sim",
        .port = "sim",
        .central = true,
        .peripheral = true,
        .observer = true,
        .broadcaster = true,
        .l2cap = true,
        .pairing = true,
        .ext_adv = true,
        .max_connections = BB_MAX_CONNECTIONS,
        .max_mtu = BB_MAX_ATTR_LEN + 5, /* 517: the air's (Bumble's) largest ATT MTU */
        .max_l2cap_mtu = BB_MAX_L2CAP_SDU,
        .holds_back_events = true, /* refused events stay in the air queue (README) */
    };
    return &caps;
}

uint32_t bb_port_millis(void)
{
    return now_ms();
}

uint32_t bb_port_boot_id(void)
{
    return sim.boot_id;
}

void bb_port_critical_enter(void)
{
}

void bb_port_critical_exit(void)
{
}

int bb_port_transport_write(const uint8_t *buf, size_t len)
{
    if (sim.air_fd < 0) {
        /* The air is gone: the board exits at the top of its loop and says nothing more (a
         * call that was waiting on the air would otherwise be answered EIO, a stack failure,
         * just before the board vanishes). The host sees the pty end, and BoardLost gives the
         * reason from the board's log: "the air closed the connection". */
        return (int)len;
    }
    if (!sim.host_present) {
        return (int)len; /* nobody has the pty open: bytes go where an unplugged USB's go */
    }
    ssize_t n = write(sim.pty_fd, buf, len);
    if (n >= 0) {
        return (int)n;
    }
    if (errno == EAGAIN || errno == EINTR) {
        return 0;
    }
    if (errno == EIO) {
        sim.host_present = false;
        return (int)len;
    }
    return -errno;
}

/* ------------------------------------------------------------------------------------------ */
/* Radio and configuration                                                                    */
/* ------------------------------------------------------------------------------------------ */

int bb_port_ble_activate(bool on)
{
    REQ_BEGIN("activate");
    ok = ok && zcbor_bool_put(zs, on);
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_reset(void)
{
    /* Events of the previous session are stale after a reset (the air restarts its window). */
    sim.evq_off = sim.evq_used = 0;
    sim.consumed = 0;
    REQ_BEGIN("reset");
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_config_apply(const bb_config_t *cfg)
{
    REQ_BEGIN("config");
    ok = ok && zcbor_uint32_put(zs, cfg->addr_mode)
         && zcbor_tstr_encode_ptr(zs, cfg->gap_name, strnlen(cfg->gap_name, BB_MAX_NAME))
         && zcbor_uint32_put(zs, cfg->appearance) && zcbor_uint32_put(zs, cfg->mtu)
         && zcbor_bool_put(zs, cfg->bond) && zcbor_bool_put(zs, cfg->mitm)
         && zcbor_uint32_put(zs, cfg->io) && zcbor_bool_put(zs, cfg->le_secure)
         && zcbor_int32_put(zs, cfg->tx_power) && zcbor_bool_put(zs, cfg->read_request);
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_addr_get(bb_addr_t *out)
{
    REQ_BEGIN("addr_get");
    return req_end(zs, ok, decode_addr, out);
}

int bb_port_addr_set_static(const uint8_t addr[BB_ADDR_LEN])
{
    REQ_BEGIN("addr_set");
    ok = ok && zcbor_bstr_encode_ptr(zs, (const char *)addr, BB_ADDR_LEN);
    return req_end(zs, ok, NULL, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* GAP                                                                                        */
/* ------------------------------------------------------------------------------------------ */

int bb_port_gap_advertise_start(const bb_adv_params_t *p)
{
    REQ_BEGIN("adv_start");
    ok = ok && zcbor_uint32_put(zs, p->interval_us)
         && zcbor_bstr_encode_ptr(zs, (const char *)(p->adv_data ? p->adv_data : (const uint8_t *)""),
                                  p->adv_data ? p->adv_len : 0)
         && zcbor_bstr_encode_ptr(zs, (const char *)(p->resp_data ? p->resp_data : (const uint8_t *)""),
                                  p->resp_data ? p->resp_len : 0)
         && zcbor_bool_put(zs, p->connectable) && zcbor_bool_put(zs, p->scannable)
         && zcbor_bool_put(zs, p->extended) && zcbor_uint32_put(zs, p->timeout_ms);
    ok = ok && (p->has_tx_power ? zcbor_int32_put(zs, p->tx_power) : zcbor_nil_put(zs, NULL));
    if (p->directed) {
        ok = ok && zcbor_uint32_put(zs, p->peer.type)
             && zcbor_bstr_encode_ptr(zs, (const char *)p->peer.addr, BB_ADDR_LEN);
    }
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_gap_advertise_stop(void)
{
    return call_u("adv_stop", 0, 0, 0, 0);
}

int bb_port_gap_scan_start(const bb_scan_params_t *p)
{
    REQ_BEGIN("scan_start");
    ok = ok && zcbor_uint32_put(zs, p->duration_ms) && zcbor_uint32_put(zs, p->interval_us)
         && zcbor_uint32_put(zs, p->window_us) && zcbor_bool_put(zs, p->active)
         && zcbor_bool_put(zs, p->filter_duplicates);
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_gap_scan_stop(void)
{
    return call_u("scan_stop", 0, 0, 0, 0);
}

int bb_port_gap_connect(const bb_connect_params_t *p)
{
    REQ_BEGIN("connect");
    ok = ok && zcbor_uint32_put(zs, p->peer.type)
         && zcbor_bstr_encode_ptr(zs, (const char *)p->peer.addr, BB_ADDR_LEN)
         && zcbor_uint32_put(zs, p->scan_duration_ms) && zcbor_uint32_put(zs, p->conn.min_interval_us)
         && zcbor_uint32_put(zs, p->conn.max_interval_us) && zcbor_uint32_put(zs, p->conn.latency)
         && zcbor_uint32_put(zs, p->conn.supervision_timeout_ms);
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_gap_connect_cancel(void)
{
    return call_u("connect_cancel", 0, 0, 0, 0);
}

int bb_port_gap_disconnect(uint16_t conn)
{
    return call_u("disconnect", 1, conn, 0, 0);
}

int bb_port_gap_conn_update(uint16_t conn, const bb_conn_params_t *p)
{
    REQ_BEGIN("conn_update");
    ok = ok && zcbor_uint32_put(zs, conn) && zcbor_uint32_put(zs, p->min_interval_us)
         && zcbor_uint32_put(zs, p->max_interval_us) && zcbor_uint32_put(zs, p->latency)
         && zcbor_uint32_put(zs, p->supervision_timeout_ms);
    return req_end(zs, ok, NULL, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* GATT server                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    bb_gatts_svc_t *svcs;
    uint8_t count;
} reg_ctx_t;

static bool decode_u16(zcbor_state_t *zs, uint16_t *out)
{
    uint32_t v = 0;
    if (!zcbor_uint32_decode(zs, &v) || v > 0xFFFF) {
        return false;
    }
    *out = (uint16_t)v;
    return true;
}

/* Result: per service [handle, [[decl, value, cccd or 0, [dsc...]], ...]]. */
static bool decode_register(zcbor_state_t *zs, void *ctx)
{
    reg_ctx_t *r = ctx;
    bool ok = zcbor_list_start_decode(zs);
    for (uint8_t s = 0; ok && s < r->count; s++) {
        bb_gatts_svc_t *svc = &r->svcs[s];
        ok = zcbor_list_start_decode(zs) && decode_u16(zs, &svc->handle) && zcbor_list_start_decode(zs);
        for (uint8_t c = 0; ok && c < svc->chr_count; c++) {
            bb_gatts_chr_t *chr = &svc->chrs[c];
            ok = zcbor_list_start_decode(zs) && decode_u16(zs, &chr->decl_handle)
                 && decode_u16(zs, &chr->value_handle) && decode_u16(zs, &chr->cccd_handle)
                 && zcbor_list_start_decode(zs);
            for (uint8_t d = 0; ok && d < chr->dsc_count; d++) {
                ok = decode_u16(zs, &chr->dscs[d].handle);
            }
            ok = ok && zcbor_list_end_decode(zs) && zcbor_list_end_decode(zs);
        }
        ok = ok && zcbor_list_end_decode(zs) && zcbor_list_end_decode(zs);
    }
    return ok && zcbor_list_end_decode(zs);
}

int bb_port_gatts_register(bb_gatts_svc_t *svcs, uint8_t svc_count)
{
    REQ_BEGIN("gatts_register");
    ok = ok && zcbor_list_start_encode(zs, svc_count);
    for (uint8_t s = 0; ok && s < svc_count; s++) {
        const bb_gatts_svc_t *svc = &svcs[s];
        ok = zcbor_list_start_encode(zs, 2) && put_uuid(zs, &svc->uuid)
             && zcbor_list_start_encode(zs, svc->chr_count);
        for (uint8_t c = 0; ok && c < svc->chr_count; c++) {
            const bb_gatts_chr_t *chr = &svc->chrs[c];
            ok = zcbor_list_start_encode(zs, 5) && put_uuid(zs, &chr->uuid)
                 && zcbor_uint32_put(zs, chr->flags) && zcbor_uint32_put(zs, chr->max_len)
                 && zcbor_bstr_encode_ptr(zs, (const char *)(chr->init ? chr->init : (const uint8_t *)""),
                                          chr->init ? chr->init_len : 0)
                 && zcbor_list_start_encode(zs, chr->dsc_count);
            for (uint8_t d = 0; ok && d < chr->dsc_count; d++) {
                const bb_gatts_dsc_t *dsc = &chr->dscs[d];
                ok = zcbor_list_start_encode(zs, 4) && put_uuid(zs, &dsc->uuid)
                     && zcbor_uint32_put(zs, dsc->flags) && zcbor_uint32_put(zs, dsc->max_len)
                     && zcbor_bstr_encode_ptr(zs, (const char *)(dsc->init ? dsc->init : (const uint8_t *)""),
                                              dsc->init ? dsc->init_len : 0)
                     && zcbor_list_end_encode(zs, 4);
            }
            ok = ok && zcbor_list_end_encode(zs, chr->dsc_count) && zcbor_list_end_encode(zs, 5);
        }
        ok = ok && zcbor_list_end_encode(zs, svc->chr_count) && zcbor_list_end_encode(zs, 2);
    }
    ok = ok && zcbor_list_end_encode(zs, svc_count);
    reg_ctx_t ctx = {.svcs = svcs, .count = svc_count};
    return req_end(zs, ok, decode_register, &ctx);
}

/* Give the air the core's current value of a local attribute (the air serves peer reads). */
static int send_value(uint16_t value_handle)
{
    uint16_t len = 0;
    uint16_t max_len = 0;
    const uint8_t *value = bb_core_gatts_value(value_handle, &len, &max_len);
    if (value == NULL) {
        return -EINVAL;
    }
    REQ_BEGIN("gatts_value");
    ok = ok && zcbor_uint32_put(zs, value_handle) && zcbor_bstr_encode_ptr(zs, (const char *)value, len);
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_gatts_value_changed(uint16_t value_handle)
{
    return send_value(value_handle);
}

static int notify_or_indicate(const char *op, uint16_t conn, uint16_t value_handle,
                              const uint8_t *data, uint16_t len)
{
    REQ_BEGIN(op);
    ok = ok && zcbor_uint32_put(zs, conn) && zcbor_uint32_put(zs, value_handle)
         && put_bytes(zs, data, len);
    return req_end(zs, ok, NULL, NULL);
}

/* A post, not a call: the core has checked the radio, the connection and the handle, and a
 * notification has no outcome to wait for (a stack queues it and returns; one that meets a
 * connection closing meanwhile is lost, as on a radio). Waiting for the air's answer would
 * cost a round trip per notification; the air's throughput is what the bench measures. */
int bb_port_gatts_notify(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    POST_BEGIN("gatts_notify");
    ok = ok && zcbor_uint32_put(zs, conn) && zcbor_uint32_put(zs, value_handle)
         && put_bytes(zs, data, len);
    return post_end(zs, ok);
}

int bb_port_gatts_indicate(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    return notify_or_indicate("gatts_indicate", conn, value_handle, data, len);
}

/* ------------------------------------------------------------------------------------------ */
/* GATT client                                                                                */
/* ------------------------------------------------------------------------------------------ */

static int discover(const char *op, uint16_t conn, bool ranged, uint16_t start, uint16_t end,
                    const bb_uuid_t *uuid)
{
    REQ_BEGIN(op);
    ok = ok && zcbor_uint32_put(zs, conn);
    if (ranged) {
        ok = ok && zcbor_uint32_put(zs, start) && zcbor_uint32_put(zs, end);
    }
    ok = ok && put_uuid(zs, uuid);
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_gattc_discover_services(uint16_t conn, const bb_uuid_t *uuid)
{
    return discover("gattc_services", conn, false, 0, 0, uuid);
}

int bb_port_gattc_discover_characteristics(uint16_t conn, uint16_t start, uint16_t end,
                                           const bb_uuid_t *uuid)
{
    return discover("gattc_chars", conn, true, start, end, uuid);
}

int bb_port_gattc_discover_descriptors(uint16_t conn, uint16_t start, uint16_t end,
                                       const bb_uuid_t *uuid)
{
    return discover("gattc_dscs", conn, true, start, end, uuid);
}

int bb_port_gattc_read(uint16_t conn, uint16_t value_handle)
{
    return call_u("gattc_read", 2, conn, value_handle, 0);
}

/* A write without response is a post, as gatts_notify is (the core has checked the radio and
 * the connection; a Write Command has no outcome to wait for). */
int bb_port_gattc_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len,
                        bool with_response)
{
    if (!with_response) {
        POST_BEGIN("gattc_write");
        ok = ok && zcbor_uint32_put(zs, conn) && zcbor_uint32_put(zs, value_handle)
             && zcbor_bstr_encode_ptr(zs, (const char *)(data ? data : (const uint8_t *)""), data ? len : 0)
             && zcbor_bool_put(zs, false);
        return post_end(zs, ok);
    }
    REQ_BEGIN("gattc_write");
    ok = ok && zcbor_uint32_put(zs, conn) && zcbor_uint32_put(zs, value_handle)
         && zcbor_bstr_encode_ptr(zs, (const char *)(data ? data : (const uint8_t *)""), data ? len : 0)
         && zcbor_bool_put(zs, with_response);
    return req_end(zs, ok, NULL, NULL);
}

int bb_port_gattc_exchange_mtu(uint16_t conn)
{
    return call_u("gattc_mtu", 1, conn, 0, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* L2CAP                                                                                      */
/* ------------------------------------------------------------------------------------------ */

int bb_port_l2cap_listen(uint16_t psm, uint16_t mtu)
{
    return call_u("l2cap_listen", 2, psm, mtu, 0);
}

int bb_port_l2cap_connect(uint16_t conn, uint16_t psm, uint16_t mtu)
{
    return call_u("l2cap_connect", 3, conn, psm, mtu);
}

static bool decode_int(zcbor_state_t *zs, void *ctx)
{
    return zcbor_int32_decode(zs, ctx);
}

int bb_port_l2cap_send(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len)
{
    int32_t stalled = 0;
    REQ_BEGIN("l2cap_send");
    ok = ok && zcbor_uint32_put(zs, conn) && zcbor_uint32_put(zs, cid)
         && zcbor_bstr_encode_ptr(zs, (const char *)(data ? data : (const uint8_t *)""), data ? len : 0);
    int rc = req_end(zs, ok, decode_int, &stalled);
    return rc != 0 ? rc : (stalled ? 1 : 0);
}

int bb_port_l2cap_disconnect(uint16_t conn, uint16_t cid)
{
    return call_u("l2cap_disconnect", 2, conn, cid, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Security                                                                                   */
/* ------------------------------------------------------------------------------------------ */

int bb_port_gap_pair(uint16_t conn)
{
    return call_u("pair", 1, conn, 0, 0);
}

int bb_port_gap_passkey(uint16_t conn, uint8_t action, uint32_t passkey)
{
    return call_u("passkey", 3, conn, action, passkey);
}

int bb_port_sec_erase_bonds(void)
{
    return call_u("erase_bonds", 0, 0, 0, 0);
}

typedef struct {
    bool *encrypted, *authenticated, *bonded;
    uint8_t *key_size;
} sec_ctx_t;

static bool decode_sec(zcbor_state_t *zs, void *ctx)
{
    sec_ctx_t *s = ctx;
    uint32_t key_size = 0;
    bool ok = zcbor_list_start_decode(zs) && zcbor_bool_decode(zs, s->encrypted)
              && zcbor_bool_decode(zs, s->authenticated) && zcbor_bool_decode(zs, s->bonded)
              && zcbor_uint32_decode(zs, &key_size) && zcbor_list_end_decode(zs);
    *s->key_size = (uint8_t)key_size;
    return ok;
}

int bb_port_sec_state(uint16_t conn, bool *encrypted, bool *authenticated, bool *bonded,
                      uint8_t *key_size)
{
    sec_ctx_t ctx = {encrypted, authenticated, bonded, key_size};
    REQ_BEGIN("sec_state");
    ok = ok && zcbor_uint32_put(zs, conn);
    return req_end(zs, ok, decode_sec, &ctx);
}

void bb_port_answer(bb_question_kind_t kind, uint32_t port_ref, const bb_answer_t *answer)
{
    REQ_BEGIN("answer");
    ok = ok && zcbor_uint32_put(zs, (uint32_t)kind) && zcbor_uint32_put(zs, port_ref)
         && zcbor_bool_put(zs, answer->timed_out) && zcbor_bool_put(zs, answer->found)
         && zcbor_uint32_put(zs, answer->u) && put_bytes(zs, answer->data, answer->len);
    int rc = req_end(zs, ok, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "bb_sim %s: answer %u to the air failed (%d)\n", sim.name,
                (unsigned)port_ref, rc);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Events from the air                                                                        */
/* ------------------------------------------------------------------------------------------ */

enum { V_NONE, V_UINT, V_INT, V_BOOL, V_BYTES, V_TEXT, V_NIL };

typedef struct {
    uint8_t type;
    uint64_t u;
    int64_t i;
    const uint8_t *p;
    size_t len;
} air_val_t;

static bool decode_val(zcbor_state_t *zs, air_val_t *v)
{
    if (zs->payload >= zs->payload_end) {
        return false;
    }
    uint8_t head = *zs->payload;
    struct zcbor_string s;
    bool b = false;
    memset(v, 0, sizeof *v);
    switch (ZCBOR_MAJOR_TYPE(head)) {
    case ZCBOR_MAJOR_TYPE_PINT:
        v->type = V_UINT;
        if (!zcbor_uint64_decode(zs, &v->u)) {
            return false;
        }
        v->i = (int64_t)v->u;
        return true;
    case ZCBOR_MAJOR_TYPE_NINT:
        v->type = V_INT;
        return zcbor_int64_decode(zs, &v->i);
    case ZCBOR_MAJOR_TYPE_BSTR:
    case ZCBOR_MAJOR_TYPE_TSTR:
        v->type = ZCBOR_MAJOR_TYPE(head) == ZCBOR_MAJOR_TYPE_BSTR ? V_BYTES : V_TEXT;
        if (!(v->type == V_BYTES ? zcbor_bstr_decode(zs, &s) : zcbor_tstr_decode(zs, &s))) {
            return false;
        }
        v->p = s.value;
        v->len = s.len;
        return true;
    case ZCBOR_MAJOR_TYPE_SIMPLE:
        if (head == 0xF6) {
            v->type = V_NIL;
            return zcbor_nil_expect(zs, NULL);
        }
        v->type = V_BOOL;
        if (!zcbor_bool_decode(zs, &b)) {
            return false;
        }
        v->u = b;
        return true;
    default:
        return false;
    }
}

static bb_addr_t val_addr(const air_val_t *type, const air_val_t *addr)
{
    bb_addr_t a = {.type = (uint8_t)type->u};
    if (addr->type == V_BYTES && addr->len == BB_ADDR_LEN) {
        memcpy(a.addr, addr->p, BB_ADDR_LEN);
    }
    return a;
}

static bb_uuid_t val_uuid(const air_val_t *v)
{
    bb_uuid_t u = {0};
    if (v->type == V_BYTES && (v->len == 2 || v->len == 4 || v->len == 16)) {
        u.len = (uint8_t)v->len;
        memcpy(u.bytes, v->p, v->len);
    }
    return u;
}

/* The safe default of a question the core could not take (BB_MAX_QUESTIONS open). */
static void answer_default(bb_question_kind_t kind, uint32_t ref)
{
    bb_answer_t answer = {.timed_out = true};
    bb_port_answer(kind, ref, &answer);
}

#define U16(n) ((uint16_t)v[n].u)
#define U8(n) ((uint8_t)v[n].u)
#define DATA(n) (v[n].type == V_BYTES ? v[n].p : NULL)
#define LEN16(n) ((uint16_t)(v[n].type == V_BYTES ? v[n].len : 0))
#define NAME_IS(s) (name.len == sizeof(s) - 1 && memcmp(name.value, (s), sizeof(s) - 1) == 0)

/* Deliver one queued event. Returns -ENOMEM when the core has no room (keep it queued). */
static int deliver(const uint8_t *payload, size_t len)
{
    air_val_t v[AIR_MAX_FIELDS];
    uint32_t kind = 0;
    struct zcbor_string name;
    int n = 0;
    ZCBOR_STATE_D(zs, AIR_CBOR_DEPTH, payload, len, 1, 0);
    if (!zcbor_list_start_decode(zs) || !zcbor_uint32_decode(zs, &kind) || kind != AIR_MSG_EVT
        || !zcbor_tstr_decode(zs, &name)) {
        return 0;
    }
    while (n < AIR_MAX_FIELDS && !zcbor_array_at_end(zs)) {
        if (!decode_val(zs, &v[n])) {
            fprintf(stderr, "bb_sim %s: undecodable air event %.*s\n", sim.name, (int)name.len,
                    (const char *)name.value);
            return 0;
        }
        n++;
    }
    for (int i = n; i < AIR_MAX_FIELDS; i++) {
        memset(&v[i], 0, sizeof v[i]);
    }
    bb_addr_t a;
    bb_uuid_t u;
    int rc = 0;
    if (NAME_IS("CENTRAL_CONNECT")) {
        a = val_addr(&v[1], &v[2]);
        rc = bb_on_central_connect(U16(0), &a);
    } else if (NAME_IS("CENTRAL_DISCONNECT")) {
        a = val_addr(&v[1], &v[2]);
        rc = bb_on_central_disconnect(U16(0), &a, U8(3));
    } else if (NAME_IS("PERIPHERAL_CONNECT")) {
        a = val_addr(&v[1], &v[2]);
        rc = bb_on_peripheral_connect(U16(0), &a);
    } else if (NAME_IS("PERIPHERAL_DISCONNECT")) {
        a = val_addr(&v[1], &v[2]);
        rc = bb_on_peripheral_disconnect(U16(0), &a, U8(3));
    } else if (NAME_IS("ADVERTISE_DONE")) {
        rc = bb_on_advertise_done(U8(0));
    } else if (NAME_IS("SCAN_RESULT")) {
        a = val_addr(&v[0], &v[1]);
        rc = bb_on_scan_result(&a, U8(2), (int8_t)v[3].i, DATA(4), LEN16(4));
    } else if (NAME_IS("SCAN_DONE")) {
        rc = bb_on_scan_done();
    } else if (NAME_IS("CONNECTION_UPDATE")) {
        rc = bb_on_connection_update(U16(0), U16(1), U16(2), U16(3), U8(4));
    } else if (NAME_IS("GATTS_WRITE")) {
        rc = bb_on_gatts_write(U16(0), U16(1), DATA(2), LEN16(2), U16(3));
        if (rc == 0) {
            /* The core stored the write its own way (truncated, appended): mirror it. */
            send_value(U16(1));
        }
    } else if (NAME_IS("GATTS_INDICATE_DONE")) {
        rc = bb_on_gatts_indicate_done(U16(0), U16(1), U8(2));
    } else if (NAME_IS("MTU_EXCHANGED")) {
        rc = bb_on_mtu_exchanged(U16(0), U16(1));
    } else if (NAME_IS("GATTC_SERVICE_RESULT")) {
        u = val_uuid(&v[3]);
        rc = bb_on_gattc_service_result(U16(0), U16(1), U16(2), &u);
    } else if (NAME_IS("GATTC_SERVICE_DONE")) {
        rc = bb_on_gattc_service_done(U16(0), U16(1));
    } else if (NAME_IS("GATTC_CHARACTERISTIC_RESULT")) {
        u = val_uuid(&v[4]);
        rc = bb_on_gattc_characteristic_result(U16(0), U16(1), U16(2), U8(3), &u);
    } else if (NAME_IS("GATTC_CHARACTERISTIC_DONE")) {
        rc = bb_on_gattc_characteristic_done(U16(0), U16(1));
    } else if (NAME_IS("GATTC_DESCRIPTOR_RESULT")) {
        u = val_uuid(&v[2]);
        rc = bb_on_gattc_descriptor_result(U16(0), U16(1), &u);
    } else if (NAME_IS("GATTC_DESCRIPTOR_DONE")) {
        rc = bb_on_gattc_descriptor_done(U16(0), U16(1));
    } else if (NAME_IS("GATTC_READ_RESULT")) {
        rc = bb_on_gattc_read_result(U16(0), U16(1), DATA(2), LEN16(2));
    } else if (NAME_IS("GATTC_READ_DONE")) {
        rc = bb_on_gattc_read_done(U16(0), U16(1), U16(2));
    } else if (NAME_IS("GATTC_WRITE_DONE")) {
        rc = bb_on_gattc_write_done(U16(0), U16(1), U16(2));
    } else if (NAME_IS("GATTC_NOTIFY")) {
        rc = bb_on_gattc_notify(U16(0), U16(1), DATA(2), LEN16(2));
    } else if (NAME_IS("GATTC_INDICATE")) {
        rc = bb_on_gattc_indicate(U16(0), U16(1), DATA(2), LEN16(2));
    } else if (NAME_IS("L2CAP_CONNECT")) {
        rc = bb_on_l2cap_connect(U16(0), U16(1), U16(2), U16(3), U16(4));
    } else if (NAME_IS("L2CAP_DISCONNECT")) {
        rc = bb_on_l2cap_disconnect(U16(0), U16(1), U16(2), U16(3));
    } else if (NAME_IS("L2CAP_RECV")) {
        rc = bb_on_l2cap_recv(U16(0), U16(1), DATA(2), LEN16(2));
    } else if (NAME_IS("L2CAP_SEND_READY")) {
        rc = bb_on_l2cap_send_ready(U16(0), U16(1), U16(2));
    } else if (NAME_IS("ENCRYPTION_UPDATE")) {
        rc = bb_on_encryption_update(U16(0), v[1].u != 0, v[2].u != 0, v[3].u != 0, U8(4));
    } else if (NAME_IS("PASSKEY_ACTION")) {
        rc = bb_on_passkey_action(U16(0), U8(1), (uint32_t)v[2].u);
    } else if (NAME_IS("GATTS_READ_REQUEST")) {
        if (bb_on_question_read((uint32_t)v[0].u, U16(1), U16(2)) != 0) {
            answer_default(BB_QUESTION_READ, (uint32_t)v[0].u);
        }
    } else if (NAME_IS("L2CAP_ACCEPT")) {
        if (bb_on_question_l2cap_accept((uint32_t)v[0].u, U16(1), U16(2), U16(3), U16(4), U16(5)) != 0) {
            answer_default(BB_QUESTION_L2CAP_ACCEPT, (uint32_t)v[0].u);
        }
    } else if (NAME_IS("GET_SECRET")) {
        if (bb_on_question_get_secret((uint32_t)v[0].u, U8(1), U8(2), DATA(3), LEN16(3)) != 0) {
            answer_default(BB_QUESTION_GET_SECRET, (uint32_t)v[0].u);
        }
    } else if (NAME_IS("SET_SECRET")) {
        if (bb_on_question_set_secret((uint32_t)v[0].u, U8(1), DATA(2), LEN16(2), DATA(3), LEN16(3)) != 0) {
            answer_default(BB_QUESTION_SET_SECRET, (uint32_t)v[0].u);
        }
    } else {
        fprintf(stderr, "bb_sim %s: unknown air event %.*s\n", sim.name, (int)name.len,
                (const char *)name.value);
    }
    return rc == -ENOMEM ? -ENOMEM : 0;
}

/* Tell the air how many bytes of events left the queue (its window, see README.md), as a post:
 * nothing waits for it. Only once BB_SIM_AIR_ACK_MIN_BYTES have: an ack costs the air a
 * message, and one per delivery pass was one per two or three notifications in a stream. */
static void send_ack(void)
{
    uint8_t cbor[AIR_ACK_CBOR_MAX];
    uint8_t wire[BB_FRAME_WIRE_MAX(AIR_ACK_CBOR_MAX)];
    if (sim.consumed < BB_SIM_AIR_ACK_MIN_BYTES || sim.air_fd < 0) {
        return;
    }
    ZCBOR_STATE_E(zs, 1, cbor, sizeof cbor, 1);
    bool ok = zcbor_list_start_encode(zs, 3) && zcbor_uint32_put(zs, AIR_MSG_POST)
              && zcbor_tstr_put_lit(zs, "ack") && zcbor_uint32_put(zs, sim.consumed)
              && zcbor_list_end_encode(zs, 3);
    size_t n = ok ? bb_frame_encode(cbor, (size_t)(zs->payload - cbor), wire, sizeof wire) : 0;
    if (n == 0 || !write_all(sim.air_fd, wire, n)) {
        fprintf(stderr, "bb_sim %s: could not acknowledge air events\n", sim.name);
        return;
    }
    sim.consumed = 0;
}

bool bb_sim_deliver_events(void)
{
    bool held = false;
    /* Records before evq_off are delivered (and acknowledged) but still take room until moved
     * out; events that arrive during this loop's port calls cannot move them (delivering). */
    if (sim.evq_off > 0) {
        memmove(evq, evq + sim.evq_off, sim.evq_used - sim.evq_off);
        sim.evq_used -= sim.evq_off;
        sim.evq_off = 0;
    }
    while (sim.evq_off < sim.evq_used) {
        size_t len = (size_t)evq[sim.evq_off] | ((size_t)evq[sim.evq_off + 1] << 8);
        /* deliver() may make port calls (gatts_value), which can queue more events behind. */
        sim.delivering = true;
        int rc = deliver(evq + sim.evq_off + 2, len);
        sim.delivering = false;
        if (rc == -ENOMEM) {
            held = true;
            break;
        }
        sim.evq_off += 2 + len;
        sim.consumed += (uint32_t)(2 + len);
    }
    if (!held) {
        sim.evq_off = sim.evq_used = 0;
    }
    send_ack();
    return held;
}
