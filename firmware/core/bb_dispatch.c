/*
 * Request handlers, one per schema method. Arguments arrive validated against bb_methods[]
 * (count, CBOR types, nullability, limits); handlers check what the table cannot express:
 * handles (UNKNOWN_HANDLE), radio state (NOT_ACTIVE), value ranges (EINVAL), then call the
 * port. A port returns 0 or a negative protocol errno (-BB_STATUS_E*, bb_port.h); the C library's
 * E* macros are never used because newlib (ARM, ESP-IDF) numbers several of them differently.
 */
#include <string.h>

#include "bb_core.h"
#include "bb_gatts.h"
#include "bb_proto.h"

/* A port's negative status is a protocol errno (bb_port.h): pass it through when it is one,
 * anything else (a port bug) becomes EIO rather than a misleading number. */
static int errno_status(int e)
{
    switch (e) {
    case BB_STATUS_EPERM: case BB_STATUS_ENOENT: case BB_STATUS_EIO: case BB_STATUS_E2BIG:
    case BB_STATUS_EAGAIN: case BB_STATUS_ENOMEM: case BB_STATUS_EBUSY: case BB_STATUS_EINVAL:
    case BB_STATUS_EOPNOTSUPP: case BB_STATUS_ENOTCONN: case BB_STATUS_ETIMEDOUT:
    case BB_STATUS_EALREADY: case BB_STATUS_EINPROGRESS:
        return e;
    default:
        return BB_STATUS_EIO;
    }
}

/* Status of a port call: 0 (or a positive port result) is OK. */
static int port(int rc)
{
    if (rc >= 0) {
        return BB_STATUS_OK;
    }
    bb_core.n.port_errors++;
    return errno_status(-rc);
}

/* Encoder result: OK, or ENOMEM when the result did not fit in a frame. */
static int put(bool ok)
{
    return ok ? BB_STATUS_OK : BB_STATUS_ENOMEM;
}

static int put_nil(zcbor_state_t *res)
{
    return put(zcbor_nil_put(res, NULL));
}

#define REQUIRE_ACTIVE()                                                                       \
    do {                                                                                       \
        if (!bb_core.active) {                                                                 \
            return BB_STATUS_NOT_ACTIVE;                                                       \
        }                                                                                      \
    } while (0)

#define REQUIRE_CONN(conn)                                                                     \
    do {                                                                                       \
        if (!bb_core_conn_known(conn)) {                                                       \
            return BB_STATUS_UNKNOWN_HANDLE;                                                   \
        }                                                                                      \
    } while (0)

static uint16_t arg_u16(const bb_request_t *r, unsigned i, int *status)
{
    uint32_t v = bb_arg_u32(r, i);
    if (v > 0xFFFF && *status == BB_STATUS_OK) {
        *status = BB_STATUS_VALUE_TOO_LARGE;
    }
    return (uint16_t)v;
}

static uint32_t opt_u32(const bb_request_t *r, unsigned i)
{
    return bb_arg_is_nil(r, i) ? 0 : bb_arg_u32(r, i);
}

static bool uuid_arg(const bb_request_t *r, unsigned i, bb_uuid_t *u)
{
    if (bb_arg_is_nil(r, i)) {
        return false;
    }
    u->len = (uint8_t)r->args[i].len;
    memcpy(u->bytes, r->args[i].ptr, u->len);
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Board                                                                                      */
/* ---------------------------------------------------------------------------------------- */

static bool put_kv_u32(zcbor_state_t *res, const char *key, uint32_t v)
{
    return zcbor_tstr_encode_ptr(res, key, strlen(key)) && zcbor_uint32_put(res, v);
}

static bool put_kv_bool(zcbor_state_t *res, const char *key, bool v)
{
    return zcbor_tstr_encode_ptr(res, key, strlen(key)) && zcbor_bool_put(res, v);
}

static bool put_kv_str(zcbor_state_t *res, const char *key, const char *v)
{
    return zcbor_tstr_encode_ptr(res, key, strlen(key))
           && zcbor_tstr_encode_ptr(res, v != NULL ? v : "", v != NULL ? strlen(v) : 0);
}

static int h_handshake(const bb_request_t *r, zcbor_state_t *res)
{
    (void)r;
    const bb_port_caps_t *caps = bb_port_caps();
    bb_addr_t addr;
    memset(&addr, 0, sizeof(addr));
    /* The radio address belongs in the handshake even while the radio is off; a port whose
     * stack cannot tell it before activation fails here and the handshake reports zeros. */
    if (bb_port_addr_get(&addr) < 0) {
        memset(&addr, 0, sizeof(addr));
    }
    static const char *const role_names[4] = {"central", "peripheral", "observer", "broadcaster"};
    bool roles[4] = {caps->central, caps->peripheral, caps->observer, caps->broadcaster};
    bool ok = zcbor_map_start_encode(res, 11)
              && zcbor_tstr_put_lit(res, "proto") && zcbor_list_start_encode(res, 2)
              && zcbor_uint32_put(res, BB_PROTO_MAJOR) && zcbor_uint32_put(res, BB_PROTO_MINOR)
              && zcbor_list_end_encode(res, 2)
              && put_kv_str(res, "fw_version", BB_FW_VERSION)
              && put_kv_str(res, "fw_build", BB_FW_BUILD)
              && put_kv_str(res, "board", caps->board)
              && zcbor_tstr_put_lit(res, "caps") && zcbor_map_start_encode(res, 8)
              && zcbor_tstr_put_lit(res, "roles") && zcbor_list_start_encode(res, 4);
    for (unsigned i = 0; ok && i < 4; i++) {
        if (roles[i]) {
            ok = zcbor_tstr_encode_ptr(res, role_names[i], strlen(role_names[i]));
        }
    }
    ok = ok && zcbor_list_end_encode(res, 4)
         && put_kv_bool(res, "l2cap", caps->l2cap)
         && put_kv_bool(res, "pairing", caps->pairing)
         && put_kv_bool(res, "ext_adv", caps->ext_adv)
         && put_kv_u32(res, "max_connections", caps->max_connections)
         && put_kv_u32(res, "max_mtu", caps->max_mtu)
         && put_kv_u32(res, "max_l2cap_mtu", caps->max_l2cap_mtu)
         /* attribute values the core can hold: characteristics plus descriptors */
         && put_kv_u32(res, "max_attrs", BB_MAX_ATTRS)
         && zcbor_map_end_encode(res, 8)
         && put_kv_u32(res, "addr_type", addr.type)
         && zcbor_tstr_put_lit(res, "addr") && zcbor_bstr_encode_ptr(res, (const char *)addr.addr, BB_ADDR_LEN)
         && put_kv_u32(res, "boot_id", bb_core.boot_id)
         && put_kv_str(res, "port", caps->port)
         /* Frames built so far are sent or in flight, and responses go out before any event
          * frame built later, so the host reads this in stream order (protocol/README.md). */
         && put_kv_u32(res, "event_seq", bb_core.event_seq)
         && zcbor_map_end_encode(res, 11);
    return put(ok);
}

static int h_reset(const bb_request_t *r, zcbor_state_t *res)
{
    (void)r;
    /* Questions are answered while the port still knows their references. */
    bb_core_questions_default_all();
    int s = port(bb_port_reset());
    bb_core_state_reset();
    if (s == BB_STATUS_OK) {
        s = port(bb_port_config_apply(&bb_core.cfg));
    }
    return s != BB_STATUS_OK ? s : put_nil(res);
}

static int h_diagnostics(const bb_request_t *r, zcbor_state_t *res)
{
    (void)r;
    const bb_counters_t *n = &bb_core.n;
    const bb_frame_decoder_t *d = &bb_core_rxdec;
    const bb_evq_t *q = &bb_core_evq;
    bool ok = zcbor_map_start_encode(res, 20)
              && put_kv_u32(res, "frames_rx", d->frames_rx)
              && put_kv_u32(res, "frames_tx", n->frames_tx)
              && put_kv_u32(res, "crc_errors", d->crc_errors)
              && put_kv_u32(res, "garbage_bytes", d->garbage_bytes)
              && put_kv_u32(res, "oversize", d->oversize)
              && put_kv_u32(res, "malformed", n->malformed)
              && put_kv_u32(res, "unknown_method", n->unknown_method)
              && put_kv_u32(res, "bad_args", n->bad_args)
              && put_kv_u32(res, "too_large", n->too_large)
              && put_kv_u32(res, "unknown_handle", n->unknown_handle)
              && put_kv_u32(res, "not_active", n->not_active)
              && put_kv_u32(res, "events_dropped_scan", q->dropped_scan)
              && put_kv_u32(res, "events_dropped_other", q->dropped_other)
              && put_kv_u32(res, "events_stalled", q->stalled)
              && put_kv_u32(res, "events_queue_peak", q->peak_bytes)
              && put_kv_u32(res, "events_tx", n->events_tx)
              && put_kv_u32(res, "question_timeouts", n->question_timeouts)
              && put_kv_u32(res, "port_errors", n->port_errors)
              && put_kv_u32(res, "responses_dropped", n->responses_dropped)
              && put_kv_u32(res, "uptime_ms", bb_port_millis() - bb_core.boot_ms)
              && zcbor_map_end_encode(res, 20);
    return put(ok);
}

static int h_bench_events(const bb_request_t *r, zcbor_state_t *res)
{
    if (bb_core.bench_left != 0) {
        return BB_STATUS_EBUSY;
    }
    /* The response is queued before any BENCH event: responses go out first. */
    bb_core.bench_left = bb_arg_u32(r, 0);
    bb_core.bench_len = (uint16_t)bb_arg_u32(r, 1);
    bb_core.bench_seq = 0;
    return put_nil(res);
}

static int h_echo(const bb_request_t *r, zcbor_state_t *res)
{
    return put(zcbor_bstr_encode_ptr(res, (const char *)r->args[0].ptr, r->args[0].len));
}

static int h_reply(const bb_request_t *r, zcbor_state_t *res)
{
    bb_question_t *q = bb_core_question_find(bb_arg_u32(r, 0));
    if (q == NULL) {
        return BB_STATUS_UNKNOWN_HANDLE;
    }
    const bb_arg_t *v = &r->args[1];
    bool nil = bb_arg_is_nil(r, 1);
    bb_answer_t a = {.timed_out = false, .found = false, .u = 0, .data = NULL, .len = 0};
    switch (q->kind) {
    case BB_QUESTION_READ:
    case BB_QUESTION_L2CAP_ACCEPT:
        /* null reads as 0: allow the read, accept the channel (a callback returning None). */
        if (!nil && v->kind != BB_ARG_UINT) {
            return BB_STATUS_BAD_ARG_TYPE;
        }
        if (!nil && v->v.u > 0xFFFF) {
            return BB_STATUS_VALUE_TOO_LARGE;
        }
        a.u = nil ? 0 : (uint32_t)v->v.u;
        a.found = true;
        break;
    case BB_QUESTION_GET_SECRET:
        if (!nil && v->kind != BB_ARG_BYTES) {
            return BB_STATUS_BAD_ARG_TYPE;
        }
        if (!nil && v->len > BB_MAX_SECRET) {
            return BB_STATUS_VALUE_TOO_LARGE;
        }
        a.found = !nil;
        a.data = nil ? NULL : v->ptr;
        a.len = nil ? 0 : (uint16_t)v->len;
        break;
    default: /* BB_QUESTION_SET_SECRET */
        if (!nil && v->kind != BB_ARG_BOOL) {
            return BB_STATUS_BAD_ARG_TYPE;
        }
        a.found = !nil && v->v.b;
        break;
    }
    bb_core_question_answer(q, &a);
    return put_nil(res);
}

static int h_ble_active(const bb_request_t *r, zcbor_state_t *res)
{
    if (!bb_arg_is_nil(r, 0)) {
        bool on = bb_arg_bool(r, 0);
        if (on != bb_core.active) {
            if (!on) {
                bb_core_questions_default_all();
            }
            int s = port(bb_port_ble_activate(on));
            if (s != BB_STATUS_OK) {
                return s;
            }
            bb_core.active = on;
            if (!on) {
                /* As MicroPython: turning the radio off forgets links, services and scans. */
                bb_core_links_clear();
                bb_gatts_clear();
                bb_core.scan_rssi_filter = false;
                bb_core.scan_prefix_len = 0;
            }
        }
    }
    return put(zcbor_bool_put(res, bb_core.active));
}

static int h_config_get(const bb_request_t *r, zcbor_state_t *res)
{
    const bb_config_t *c = &bb_core.cfg;
    switch (bb_arg_u32(r, 0)) {
    case BB_CONFIG_MAC: {
        REQUIRE_ACTIVE();
        bb_addr_t a;
        int s = port(bb_port_addr_get(&a));
        if (s != BB_STATUS_OK) {
            return s;
        }
        return put(zcbor_list_start_encode(res, 2) && zcbor_uint32_put(res, a.type)
                   && zcbor_bstr_encode_ptr(res, (const char *)a.addr, BB_ADDR_LEN)
                   && zcbor_list_end_encode(res, 2));
    }
    case BB_CONFIG_ADDR_MODE: return put(zcbor_uint32_put(res, c->addr_mode));
    case BB_CONFIG_GAP_NAME: return put(zcbor_tstr_encode_ptr(res, c->gap_name, strlen(c->gap_name)));
    case BB_CONFIG_APPEARANCE: return put(zcbor_uint32_put(res, c->appearance));
    case BB_CONFIG_MTU: return put(zcbor_uint32_put(res, c->mtu));
    case BB_CONFIG_BOND: return put(zcbor_bool_put(res, c->bond));
    case BB_CONFIG_MITM: return put(zcbor_bool_put(res, c->mitm));
    case BB_CONFIG_IO: return put(zcbor_uint32_put(res, c->io));
    case BB_CONFIG_LE_SECURE: return put(zcbor_bool_put(res, c->le_secure));
    case BB_CONFIG_RXBUF: return put(zcbor_uint32_put(res, bb_core.rxbuf));
    case BB_CONFIG_READ_REQUEST: return put(zcbor_bool_put(res, bb_core.cfg.read_request));
    case BB_CONFIG_TX_POWER: return put(zcbor_int32_put(res, c->tx_power));
    default: return BB_STATUS_EINVAL;
    }
}

/* Check a config value's CBOR type; uint and int values are range checked by the caller. */
static int want(const bb_arg_t *v, bb_arg_kind_t kind)
{
    if (kind == BB_ARG_NINT) { /* any integer */
        return (v->kind == BB_ARG_UINT || v->kind == BB_ARG_NINT) ? BB_STATUS_OK : BB_STATUS_BAD_ARG_TYPE;
    }
    return v->kind == kind ? BB_STATUS_OK : BB_STATUS_BAD_ARG_TYPE;
}

static int h_config_set(const bb_request_t *r, zcbor_state_t *res)
{
    const bb_arg_t *v = &r->args[1];
    bb_config_t c = bb_core.cfg;
    int s;
    uint32_t key = bb_arg_u32(r, 0);
    switch (key) {
    case BB_CONFIG_MAC:
        if ((s = want(v, BB_ARG_BYTES)) != BB_STATUS_OK) {
            return s;
        }
        /* Not 6 bytes is not an address at all: BAD_ARG_TYPE, as for schema `addr` arguments
         * (bb_msg.c). Six bytes that are not a static random address (the two top bits of the
         * MSB, the last byte, set) are a wrong value: EINVAL. */
        if (v->len != BB_ADDR_LEN) {
            return BB_STATUS_BAD_ARG_TYPE;
        }
        if ((v->ptr[5] & 0xC0) != 0xC0) {
            return BB_STATUS_EINVAL;
        }
        s = port(bb_port_addr_set_static(v->ptr));
        return s != BB_STATUS_OK ? s : put_nil(res);
    case BB_CONFIG_GAP_NAME:
        if ((s = want(v, BB_ARG_TEXT)) != BB_STATUS_OK) {
            return s;
        }
        if (v->len > BB_MAX_NAME) {
            return BB_STATUS_VALUE_TOO_LARGE;
        }
        memcpy(c.gap_name, v->ptr, v->len);
        c.gap_name[v->len] = '\0';
        break;
    case BB_CONFIG_BOND:
    case BB_CONFIG_MITM:
    case BB_CONFIG_LE_SECURE:
    case BB_CONFIG_READ_REQUEST:
        if ((s = want(v, BB_ARG_BOOL)) != BB_STATUS_OK) {
            return s;
        }
        *(key == BB_CONFIG_BOND ? &c.bond : key == BB_CONFIG_MITM ? &c.mitm
          : key == BB_CONFIG_LE_SECURE ? &c.le_secure : &c.read_request) = v->v.b;
        break;
    case BB_CONFIG_TX_POWER:
        if ((s = want(v, BB_ARG_NINT)) != BB_STATUS_OK) {
            return s;
        }
        if (v->kind == BB_ARG_UINT ? v->v.u > 127 : v->v.i < -128) {
            return BB_STATUS_EINVAL;
        }
        c.tx_power = (int8_t)(v->kind == BB_ARG_UINT ? (int64_t)v->v.u : v->v.i);
        break;
    default: {
        /* The unsigned keys: value range per key. */
        uint64_t lo = 0, hi;
        switch (key) {
        case BB_CONFIG_ADDR_MODE: hi = BB_ADDR_MODE_NRPA; break;
        case BB_CONFIG_APPEARANCE: hi = 0xFFFF; break;
        case BB_CONFIG_MTU: lo = 23; hi = BB_MAX_ATTR_LEN + 3; break;
        case BB_CONFIG_IO: hi = BB_IO_KEYBOARD_DISPLAY; break;
        case BB_CONFIG_RXBUF: hi = UINT32_MAX; break;
        default: return BB_STATUS_EINVAL;
        }
        if ((s = want(v, BB_ARG_UINT)) != BB_STATUS_OK) {
            return s;
        }
        if (v->v.u < lo || v->v.u > hi) {
            return BB_STATUS_EINVAL;
        }
        if (key == BB_CONFIG_RXBUF) {
            bb_core.rxbuf = (uint32_t)v->v.u;
            return put_nil(res);
        }
        if (key == BB_CONFIG_ADDR_MODE) {
            c.addr_mode = (uint8_t)v->v.u;
        } else if (key == BB_CONFIG_APPEARANCE) {
            c.appearance = (uint16_t)v->v.u;
        } else if (key == BB_CONFIG_MTU) {
            c.mtu = (uint16_t)v->v.u;
        } else {
            c.io = (uint8_t)v->v.u;
        }
        break;
    }
    }
    s = port(bb_port_config_apply(&c));
    if (s != BB_STATUS_OK) {
        return s;
    }
    bb_core.cfg = c;
    return put_nil(res);
}

/* ---------------------------------------------------------------------------------------- */
/* GAP                                                                                        */
/* ---------------------------------------------------------------------------------------- */

static int h_gap_advertise_start(const bb_request_t *r, zcbor_state_t *res)
{
    REQUIRE_ACTIVE();
    bb_adv_params_t p;
    memset(&p, 0, sizeof(p));
    p.interval_us = bb_arg_u32(r, 0);
    p.adv_data = r->args[1].ptr;
    p.adv_len = (uint16_t)r->args[1].len;
    p.resp_data = r->args[2].ptr;
    p.resp_len = (uint16_t)r->args[2].len;
    p.connectable = bb_arg_bool(r, 3);
    p.scannable = bb_arg_bool(r, 4);
    p.extended = bb_arg_bool(r, 5);
    p.timeout_ms = bb_arg_u32(r, 6);
    if (!p.extended && (p.adv_len > BB_MAX_ADV_LEGACY || p.resp_len > BB_MAX_ADV_LEGACY)) {
        return BB_STATUS_VALUE_TOO_LARGE;
    }
    if (!bb_arg_is_nil(r, 7)) {
        int32_t tx = bb_arg_i32(r, 7);
        if (tx < -128 || tx > 127) {
            return BB_STATUS_EINVAL;
        }
        p.has_tx_power = true;
        p.tx_power = (int8_t)tx;
    }
    if (!bb_arg_is_nil(r, 9)) {
        uint32_t type = opt_u32(r, 8);
        if (type > BB_ADDR_TYPE_RANDOM) {
            return BB_STATUS_EINVAL;
        }
        p.directed = true;
        p.peer.type = (uint8_t)type;
        memcpy(p.peer.addr, r->args[9].ptr, BB_ADDR_LEN);
    }
    int s = port(bb_port_gap_advertise_start(&p));
    return s != BB_STATUS_OK ? s : put_nil(res);
}

static int h_simple(int rc, zcbor_state_t *res)
{
    int s = port(rc);
    return s != BB_STATUS_OK ? s : put_nil(res);
}

static int h_gap_scan_start(const bb_request_t *r, zcbor_state_t *res)
{
    REQUIRE_ACTIVE();
    bb_scan_params_t p = {
        .duration_ms = bb_arg_u32(r, 0),
        .interval_us = bb_arg_u32(r, 1),
        .window_us = bb_arg_u32(r, 2),
        .active = bb_arg_bool(r, 3),
        .filter_duplicates = bb_arg_bool(r, 4),
    };
    bool rssi_filter = !bb_arg_is_nil(r, 5);
    int32_t rssi = rssi_filter ? bb_arg_i32(r, 5) : 0;
    if (rssi < -128 || rssi > 127) {
        return BB_STATUS_EINVAL;
    }
    /* Filters are in place before the port can report anything. */
    bb_port_critical_enter();
    bb_core.scan_rssi_filter = rssi_filter;
    bb_core.scan_rssi_min = (int8_t)rssi;
    bb_core.scan_prefix_len = bb_arg_is_nil(r, 6) ? 0 : (uint8_t)r->args[6].len;
    if (bb_core.scan_prefix_len != 0) {
        memcpy(bb_core.scan_prefix, r->args[6].ptr, bb_core.scan_prefix_len);
    }
    bb_port_critical_exit();
    return h_simple(bb_port_gap_scan_start(&p), res);
}

static int h_gap_connect(const bb_request_t *r, zcbor_state_t *res)
{
    REQUIRE_ACTIVE();
    if (bb_arg_u32(r, 0) > BB_ADDR_TYPE_RANDOM) {
        return BB_STATUS_EINVAL;
    }
    int s = BB_STATUS_OK;
    bb_connect_params_t p;
    memset(&p, 0, sizeof(p));
    p.peer.type = (uint8_t)bb_arg_u32(r, 0);
    memcpy(p.peer.addr, r->args[1].ptr, BB_ADDR_LEN);
    p.scan_duration_ms = bb_arg_u32(r, 2);
    p.conn.min_interval_us = opt_u32(r, 3);
    p.conn.max_interval_us = opt_u32(r, 4);
    p.conn.latency = bb_arg_is_nil(r, 5) ? 0 : arg_u16(r, 5, &s);
    p.conn.supervision_timeout_ms = opt_u32(r, 6);
    if (s != BB_STATUS_OK) {
        return s;
    }
    return h_simple(bb_port_gap_connect(&p), res);
}

static int h_gap_conn_update(const bb_request_t *r, zcbor_state_t *res)
{
    REQUIRE_ACTIVE();
    int s = BB_STATUS_OK;
    uint16_t conn = arg_u16(r, 0, &s);
    bb_conn_params_t p = {
        .min_interval_us = bb_arg_u32(r, 1),
        .max_interval_us = bb_arg_u32(r, 2),
        .latency = arg_u16(r, 3, &s),
        .supervision_timeout_ms = bb_arg_u32(r, 4),
    };
    if (s != BB_STATUS_OK) {
        return s;
    }
    REQUIRE_CONN(conn);
    return h_simple(bb_port_gap_conn_update(conn, &p), res);
}

/* ---------------------------------------------------------------------------------------- */
/* GATT server                                                                                */
/* ---------------------------------------------------------------------------------------- */

static int h_gatts_register_services(const bb_request_t *r, zcbor_state_t *res)
{
    REQUIRE_ACTIVE();
    int s = bb_gatts_build(r->args[0].raw, r->args[0].raw_len);
    if (s != BB_STATUS_OK) {
        return s;
    }
    s = port(bb_port_gatts_register(bb_gatts_db.svcs, bb_gatts_db.svc_count));
    if (s != BB_STATUS_OK) {
        bb_gatts_clear();
        return s;
    }
    bb_gatts_bind_handles();
    return put(bb_gatts_encode_handles(res));
}

static bb_attr_t *attr_arg(const bb_request_t *r, unsigned i)
{
    uint32_t h = bb_arg_u32(r, i);
    return h > 0xFFFF ? NULL : bb_gatts_attr((uint16_t)h);
}

static int h_gatts_read(const bb_request_t *r, zcbor_state_t *res)
{
    bb_attr_t *a = attr_arg(r, 0);
    if (a == NULL) {
        return BB_STATUS_UNKNOWN_HANDLE;
    }
    bb_port_critical_enter();
    bool ok = zcbor_bstr_encode_ptr(res, (const char *)bb_gatts_value(a), a->len);
    if (ok && a->append) {
        a->len = 0;  /* append mode: a read takes what peers wrote */
    }
    bb_port_critical_exit();
    return put(ok);
}

static int h_gatts_write(const bb_request_t *r, zcbor_state_t *res)
{
    bb_attr_t *a = attr_arg(r, 0);
    if (a == NULL) {
        return BB_STATUS_UNKNOWN_HANDLE;
    }
    bb_port_critical_enter();
    int rc = bb_gatts_local_write(a, r->args[1].ptr, (uint16_t)r->args[1].len);
    bb_port_critical_exit();
    if (rc < 0) {
        return errno_status(-rc);
    }
    int s = port(bb_port_gatts_value_changed(a->handle));
    if (s == BB_STATUS_OK && bb_arg_bool(r, 2)) {
        /* send_update: conn BB_CONN_NONE with no data asks the port to notify or indicate
         * (per the characteristic's flags and each peer's CCCD) every subscribed peer with
         * the local value. */
        s = port(bb_port_gatts_notify(BB_CONN_NONE, a->handle, NULL, 0));
    }
    return s != BB_STATUS_OK ? s : put_nil(res);
}

static int h_gatts_notify_indicate(const bb_request_t *r, zcbor_state_t *res, bool indicate)
{
    REQUIRE_ACTIVE();
    int s = BB_STATUS_OK;
    uint16_t conn = arg_u16(r, 0, &s);
    if (s != BB_STATUS_OK) {
        return s;
    }
    REQUIRE_CONN(conn);
    bb_attr_t *a = attr_arg(r, 1);
    if (a == NULL) {
        return BB_STATUS_UNKNOWN_HANDLE;
    }
    /* data null: send the local value. */
    const uint8_t *data = bb_arg_is_nil(r, 2) ? bb_gatts_value(a) : r->args[2].ptr;
    uint16_t len = bb_arg_is_nil(r, 2) ? a->len : (uint16_t)r->args[2].len;
    int rc = indicate ? bb_port_gatts_indicate(conn, a->handle, data, len)
                      : bb_port_gatts_notify(conn, a->handle, data, len);
    return h_simple(rc, res);
}

static int h_gatts_set_buffer(const bb_request_t *r, zcbor_state_t *res)
{
    bb_attr_t *a = attr_arg(r, 0);
    if (a == NULL) {
        return BB_STATUS_UNKNOWN_HANDLE;
    }
    bb_port_critical_enter();
    int rc = bb_gatts_set_buffer(a, (uint16_t)bb_arg_u32(r, 1), bb_arg_bool(r, 2));
    bb_port_critical_exit();
    if (rc < 0) {
        return errno_status(-rc);
    }
    return h_simple(bb_port_gatts_value_changed(a->handle), res);
}

/* ---------------------------------------------------------------------------------------- */
/* GATT client, L2CAP, security                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Common head of per-connection methods: radio on, conn (arg 0) known. */
static int conn_arg(const bb_request_t *r, uint16_t *conn)
{
    if (!bb_core.active) {
        return BB_STATUS_NOT_ACTIVE;
    }
    int s = BB_STATUS_OK;
    *conn = arg_u16(r, 0, &s);
    if (s == BB_STATUS_OK && !bb_core_conn_known(*conn)) {
        s = BB_STATUS_UNKNOWN_HANDLE;
    }
    return s;
}

static int h_gattc_discover(const bb_request_t *r, zcbor_state_t *res)
{
    uint16_t conn;
    int s = conn_arg(r, &conn);
    if (s != BB_STATUS_OK) {
        return s;
    }
    bb_uuid_t u;
    if (r->method == BB_M_GATTC_DISCOVER_SERVICES) {
        return h_simple(bb_port_gattc_discover_services(conn, uuid_arg(r, 1, &u) ? &u : NULL), res);
    }
    uint16_t start = arg_u16(r, 1, &s);
    uint16_t end = arg_u16(r, 2, &s);
    if (s != BB_STATUS_OK) {
        return s;
    }
    const bb_uuid_t *up = uuid_arg(r, 3, &u) ? &u : NULL;
    return h_simple(r->method == BB_M_GATTC_DISCOVER_CHARACTERISTICS
                        ? bb_port_gattc_discover_characteristics(conn, start, end, up)
                        : bb_port_gattc_discover_descriptors(conn, start, end, up),
                    res);
}

static int h_gattc_read_write(const bb_request_t *r, zcbor_state_t *res)
{
    uint16_t conn;
    int s = conn_arg(r, &conn);
    uint16_t h = arg_u16(r, 1, &s);
    if (s != BB_STATUS_OK) {
        return s;
    }
    if (r->method == BB_M_GATTC_READ) {
        return h_simple(bb_port_gattc_read(conn, h), res);
    }
    uint32_t mode = bb_arg_u32(r, 3);
    if (mode > 1) {
        return BB_STATUS_EINVAL;
    }
    return h_simple(bb_port_gattc_write(conn, h, r->args[2].ptr, (uint16_t)r->args[2].len, mode == 1),
                    res);
}

static int h_l2cap(const bb_request_t *r, zcbor_state_t *res)
{
    REQUIRE_ACTIVE();
    int s = BB_STATUS_OK;
    if (r->method == BB_M_L2CAP_LISTEN) {
        uint16_t psm = arg_u16(r, 0, &s);
        uint16_t mtu = arg_u16(r, 1, &s);
        return s != BB_STATUS_OK ? s : h_simple(bb_port_l2cap_listen(psm, mtu), res);
    }
    uint16_t conn;
    if ((s = conn_arg(r, &conn)) != BB_STATUS_OK) {
        return s;
    }
    if (r->method == BB_M_L2CAP_CONNECT) {
        uint16_t psm = arg_u16(r, 1, &s);
        uint16_t mtu = arg_u16(r, 2, &s);
        return s != BB_STATUS_OK ? s : h_simple(bb_port_l2cap_connect(conn, psm, mtu), res);
    }
    uint16_t cid = arg_u16(r, 1, &s);
    if (s != BB_STATUS_OK) {
        return s;
    }
    if (!bb_core_chan_known(conn, cid)) {
        return BB_STATUS_UNKNOWN_HANDLE;
    }
    if (r->method == BB_M_L2CAP_DISCONNECT) {
        return h_simple(bb_port_l2cap_disconnect(conn, cid), res);
    }
    int rc = bb_port_l2cap_send(conn, cid, r->args[2].ptr, (uint16_t)r->args[2].len);
    if (rc < 0) {
        return port(rc);
    }
    /* 1: taken, but the channel is stalled now (MicroPython's l2cap_send returns False). */
    return put(zcbor_bool_put(res, rc == 0));
}

static int h_security(const bb_request_t *r, zcbor_state_t *res)
{
    uint16_t conn;
    int s = conn_arg(r, &conn);
    if (s != BB_STATUS_OK) {
        return s;
    }
    if (r->method == BB_M_GAP_PAIR) {
        return h_simple(bb_port_gap_pair(conn), res);
    }
    if (r->method == BB_M_GAP_PASSKEY) {
        uint32_t action = bb_arg_u32(r, 1);
        int32_t passkey = bb_arg_i32(r, 2);
        if (action > BB_PASSKEY_ACTION_NUMERIC_COMPARISON || passkey < 0 || passkey > 999999) {
            return BB_STATUS_EINVAL;
        }
        return h_simple(bb_port_gap_passkey(conn, (uint8_t)action, (uint32_t)passkey), res);
    }
    bool enc = false, auth = false, bonded = false;
    uint8_t key_size = 0;
    s = port(bb_port_sec_state(conn, &enc, &auth, &bonded, &key_size));
    if (s != BB_STATUS_OK) {
        return s;
    }
    return put(zcbor_list_start_encode(res, 4) && zcbor_bool_put(res, enc)
               && zcbor_bool_put(res, auth) && zcbor_bool_put(res, bonded)
               && zcbor_uint32_put(res, key_size) && zcbor_list_end_encode(res, 4));
}

int bb_dispatch(const bb_request_t *r, zcbor_state_t *res)
{
    switch (r->method) {
    case BB_M_HANDSHAKE: return h_handshake(r, res);
    case BB_M_RESET: return h_reset(r, res);
    case BB_M_DIAGNOSTICS: return h_diagnostics(r, res);
    case BB_M_BENCH_EVENTS: return h_bench_events(r, res);
    case BB_M_ECHO: return h_echo(r, res);
    case BB_M_REPLY: return h_reply(r, res);
    case BB_M_BLE_ACTIVE: return h_ble_active(r, res);
    case BB_M_CONFIG_GET: return h_config_get(r, res);
    case BB_M_CONFIG_SET: return h_config_set(r, res);
    case BB_M_GAP_ADVERTISE_START: return h_gap_advertise_start(r, res);
    case BB_M_GAP_ADVERTISE_STOP: REQUIRE_ACTIVE(); return h_simple(bb_port_gap_advertise_stop(), res);
    case BB_M_GAP_SCAN_START: return h_gap_scan_start(r, res);
    case BB_M_GAP_SCAN_STOP: REQUIRE_ACTIVE(); return h_simple(bb_port_gap_scan_stop(), res);
    case BB_M_GAP_CONNECT: return h_gap_connect(r, res);
    case BB_M_GAP_CONNECT_CANCEL: REQUIRE_ACTIVE(); return h_simple(bb_port_gap_connect_cancel(), res);
    case BB_M_GAP_DISCONNECT: {
        uint16_t conn;
        int s = conn_arg(r, &conn);
        return s != BB_STATUS_OK ? s : h_simple(bb_port_gap_disconnect(conn), res);
    }
    case BB_M_GAP_CONN_UPDATE: return h_gap_conn_update(r, res);
    case BB_M_GATTS_REGISTER_SERVICES: return h_gatts_register_services(r, res);
    case BB_M_GATTS_READ: return h_gatts_read(r, res);
    case BB_M_GATTS_WRITE: return h_gatts_write(r, res);
    case BB_M_GATTS_NOTIFY: return h_gatts_notify_indicate(r, res, false);
    case BB_M_GATTS_INDICATE: return h_gatts_notify_indicate(r, res, true);
    case BB_M_GATTS_SET_BUFFER: return h_gatts_set_buffer(r, res);
    case BB_M_GATTC_DISCOVER_SERVICES:
    case BB_M_GATTC_DISCOVER_CHARACTERISTICS:
    case BB_M_GATTC_DISCOVER_DESCRIPTORS: return h_gattc_discover(r, res);
    case BB_M_GATTC_READ:
    case BB_M_GATTC_WRITE: return h_gattc_read_write(r, res);
    case BB_M_GATTC_EXCHANGE_MTU: {
        uint16_t conn;
        int s = conn_arg(r, &conn);
        return s != BB_STATUS_OK ? s : h_simple(bb_port_gattc_exchange_mtu(conn), res);
    }
    case BB_M_L2CAP_LISTEN:
    case BB_M_L2CAP_CONNECT:
    case BB_M_L2CAP_SEND:
    case BB_M_L2CAP_DISCONNECT: return h_l2cap(r, res);
    case BB_M_GAP_PAIR:
    case BB_M_GAP_PASSKEY:
    case BB_M_SEC_ENCRYPTION_STATE: return h_security(r, res);
    case BB_M_SEC_ERASE_BONDS: return h_simple(bb_port_sec_erase_bonds(), res);
    default: return BB_STATUS_UNKNOWN_METHOD;
    }
}
