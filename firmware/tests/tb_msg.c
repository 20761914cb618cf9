#include "tb_msg.h"

#include <stdarg.h>
#include <string.h>

#include "bb_core.h"
#include "bb_frame.h"
#include "fake_port.h"
#include "zcbor_encode.h"

tb_out_t tb_out;
static size_t parsed_upto;
static bb_frame_decoder_t out_dec;
/* Payloads of every frame the core sent since boot; responses and events point in here. */
static uint8_t store[1u << 22];
static size_t store_len;

static size_t vreq(uint8_t *out, size_t cap, uint32_t id, uint32_t method, const char *fmt,
                   va_list ap)
{
    ZCBOR_STATE_E(st, 2, out, cap, 0);
    bool ok = zcbor_list_start_encode(st, 64) && zcbor_uint32_put(st, 0)
              && zcbor_uint32_put(st, id) && zcbor_uint32_put(st, method);
    for (const char *f = fmt; ok && *f; f++) {
        switch (*f) {
        case 'u': ok = zcbor_uint32_put(st, va_arg(ap, uint32_t)); break;
        case 'i': ok = zcbor_int32_put(st, va_arg(ap, int32_t)); break;
        case 'b': ok = zcbor_bool_put(st, va_arg(ap, int) != 0); break;
        case 'n': ok = zcbor_nil_put(st, NULL); break;
        case 'y': {
            const uint8_t *p = va_arg(ap, const uint8_t *);
            size_t n = va_arg(ap, size_t);
            ok = zcbor_bstr_encode_ptr(st, (const char *)p, n);
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            ok = zcbor_tstr_encode_ptr(st, s, strlen(s));
            break;
        }
        case 'r': {
            const uint8_t *p = va_arg(ap, const uint8_t *);
            size_t n = va_arg(ap, size_t);
            if ((size_t)(st->payload_end - st->payload) < n) {
                ok = false;
            } else {
                memcpy(st->payload_mut, p, n);
                st->payload_mut += n;
                st->elem_count++;
            }
            break;
        }
        default: ok = false; break;
        }
    }
    ok = ok && zcbor_list_end_encode(st, 64);
    return ok ? (size_t)(st->payload - out) : 0;
}

size_t tb_cbor_req(uint8_t *out, size_t cap, uint32_t id, uint32_t method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = vreq(out, cap, id, method, fmt, ap);
    va_end(ap);
    return n;
}

void tb_rx_payload(const uint8_t *cbor, size_t len)
{
    static uint8_t wire[BB_FRAME_WIRE_MAX(BB_MAX_FRAME + 64)];
    size_t n = bb_frame_encode(cbor, len, wire, sizeof(wire));
    bb_core_rx(wire, n);
}

void tb_req(uint32_t id, uint32_t method, const char *fmt, ...)
{
    uint8_t buf[2048];
    va_list ap;
    va_start(ap, fmt);
    size_t n = vreq(buf, sizeof(buf), id, method, fmt, ap);
    va_end(ap);
    tb_rx_payload(buf, n);
}

static void add_event(zcbor_state_t *st, unsigned nitems)
{
    tb_evt_t *e = &tb_out.evt[tb_out.nevt < TB_MAX_EVT ? tb_out.nevt : TB_MAX_EVT - 1];
    memset(e, 0, sizeof(*e));
    zcbor_uint32_decode(st, &e->code);
    e->fields = st->payload;
    e->nfields = nitems - 1;
    for (unsigned i = 0; i < e->nfields; i++) {
        bb_cbor_skip(st, 8);
    }
    e->fields_len = (size_t)(st->payload - e->fields);
    e->frame = tb_out.frames;
    if (tb_out.nevt < TB_MAX_EVT) {
        tb_out.nevt++;
    }
}

static void on_out_frame(void *ctx, const uint8_t *payload, size_t len)
{
    (void)ctx;
    uint8_t *p = store + store_len;
    memcpy(p, payload, len);
    store_len += len;
    zcbor_state_t st[8];
    bb_cbor_decode_init(st, 8, p, len);
    uint32_t kind;
    tb_out.frames++;
    if (!zcbor_list_start_decode(st)) {
        tb_out.other++;
        return;
    }
    size_t items = st->elem_count;
    zcbor_uint32_decode(st, &kind);
    if (kind == BB_MSG_EVT || kind == BB_MSG_EVT_BATCH) {
        uint32_t seq = 0;
        zcbor_uint32_decode(st, &seq);
        tb_out.evt_frames++;
        if (seq != tb_out.next_seq) {
            tb_out.seq_errors++;
        }
        tb_out.next_seq = (seq + 1) % BB_EVENT_SEQ_MOD;
    }
    if (kind == BB_MSG_RSP && tb_out.nrsp < TB_MAX_RSP) {
        tb_rsp_t *r = &tb_out.rsp[tb_out.nrsp++];
        memset(r, 0, sizeof(*r));
        r->frame = tb_out.frames;
        r->id_null = zcbor_nil_expect(st, NULL);
        if (!r->id_null) {
            zcbor_uint32_decode(st, &r->id);
        }
        zcbor_uint32_decode(st, &r->status);
        r->result = st->payload;
        bb_cbor_skip(st, 8);
        r->result_len = (size_t)(st->payload - r->result);
    } else if (kind == BB_MSG_EVT) {
        add_event(st, (unsigned)items - 2);   /* kind and seq are not fields */
    } else if (kind == BB_MSG_EVT_BATCH) {
        tb_out.batches++;
        while (!zcbor_array_at_end(st)) {
            zcbor_list_start_decode(st);
            add_event(st, (unsigned)st->elem_count);
            zcbor_list_end_decode(st);
        }
    } else {
        tb_out.other++;
    }
}

void tb_drain(void)
{
    for (int i = 0; i < 100000; i++) {
        bb_core_poll();
        if (!bb_core_tx_pending()) {
            break;
        }
    }
    bb_frame_decoder_feed(&out_dec, fp.out + parsed_upto, fp.out_len - parsed_upto, on_out_frame, NULL);
    parsed_upto = fp.out_len;
}

void tb_boot(void)
{
    fp_reset();
    memset(&tb_out, 0, sizeof(tb_out));
    bb_frame_decoder_init(&out_dec);
    parsed_upto = 0;
    store_len = 0;
    bb_core_init();
}

const tb_rsp_t *tb_rsp(uint32_t id)
{
    for (unsigned i = tb_out.nrsp; i-- > 0;) {
        if (!tb_out.rsp[i].id_null && tb_out.rsp[i].id == id) {
            return &tb_out.rsp[i];
        }
    }
    return NULL;
}

const tb_evt_t *tb_evt(uint32_t code)
{
    for (unsigned i = 0; i < tb_out.nevt; i++) {
        if (tb_out.evt[i].code == code) {
            return &tb_out.evt[i];
        }
    }
    return NULL;
}

unsigned tb_evt_count(uint32_t code)
{
    unsigned n = 0;
    for (unsigned i = 0; i < tb_out.nevt; i++) {
        n += tb_out.evt[i].code == code;
    }
    return n;
}

bool tb_field(const tb_evt_t *e, unsigned i, zcbor_state_t *st, size_t nst)
{
    if (e == NULL || i >= e->nfields) {
        return false;
    }
    zcbor_new_decode_state(st, nst, e->fields, e->fields_len, e->nfields, NULL, 0);
    for (unsigned k = 0; k < i; k++) {
        bb_cbor_skip(st, 8);
    }
    return true;
}

uint32_t tb_field_u32(const tb_evt_t *e, unsigned i)
{
    zcbor_state_t st[4];
    uint32_t v = 0xDEADBEEF;
    if (tb_field(e, i, st, 4)) {
        zcbor_uint32_decode(st, &v);
    }
    return v;
}

int32_t tb_field_i32(const tb_evt_t *e, unsigned i)
{
    zcbor_state_t st[4];
    int32_t v = 0x7EADBEEF;
    if (tb_field(e, i, st, 4)) {
        zcbor_int32_decode(st, &v);
    }
    return v;
}

size_t tb_field_bytes(const tb_evt_t *e, unsigned i, const uint8_t **p)
{
    zcbor_state_t st[4];
    struct zcbor_string s = {NULL, 0};
    if (tb_field(e, i, st, 4)) {
        zcbor_bstr_decode(st, &s);
    }
    *p = s.value;
    return s.len;
}

bool tb_result_u32(const tb_rsp_t *r, uint32_t *v)
{
    zcbor_state_t st[4];
    bb_cbor_decode_init(st, 4, r->result, r->result_len);
    return zcbor_uint32_decode(st, v);
}

bool tb_result_bool(const tb_rsp_t *r, bool *v)
{
    zcbor_state_t st[4];
    bb_cbor_decode_init(st, 4, r->result, r->result_len);
    return zcbor_bool_decode(st, v);
}

size_t tb_result_bytes(const tb_rsp_t *r, const uint8_t **p)
{
    zcbor_state_t st[4];
    struct zcbor_string s = {NULL, 0};
    bb_cbor_decode_init(st, 4, r->result, r->result_len);
    if (!zcbor_bstr_decode(st, &s)) {
        *p = NULL;
        return (size_t)-1;
    }
    *p = s.value;
    return s.len;
}

bool tb_result_is_nil(const tb_rsp_t *r)
{
    return r->result_len == 1 && r->result[0] == 0xF6;
}

void tb_activate(void)
{
    tb_req(9999, BB_M_BLE_ACTIVE, "b", 1);
    tb_drain();
}
