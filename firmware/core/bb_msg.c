#include "bb_msg.h"

#include <string.h>

#include "bb_proto.h"

void bb_cbor_decode_init(zcbor_state_t *states, size_t n, const uint8_t *raw, size_t len)
{
    zcbor_new_decode_state(states, n, raw, len, 1, NULL, 0);
    if (states[0].constant_state != NULL) {
        states[0].constant_state->enforce_canonical = false;
    }
}

size_t bb_cbor_head(uint8_t *out, size_t cap, uint8_t major, uint32_t value)
{
    uint8_t mt = (uint8_t)(major << 5);
    size_t n = value < 24 ? 1 : value <= 0xFF ? 2 : value <= 0xFFFF ? 3 : 5;
    if (cap < n) {
        return 0;
    }
    switch (n) {
    case 1: out[0] = (uint8_t)(mt | value); break;
    case 2: out[0] = (uint8_t)(mt | 24); out[1] = (uint8_t)value; break;
    case 3: out[0] = (uint8_t)(mt | 25); out[1] = (uint8_t)(value >> 8); out[2] = (uint8_t)value; break;
    default:
        out[0] = (uint8_t)(mt | 26);
        out[1] = (uint8_t)(value >> 24); out[2] = (uint8_t)(value >> 16);
        out[3] = (uint8_t)(value >> 8); out[4] = (uint8_t)value;
        break;
    }
    return n;
}

bool bb_cbor_skip(zcbor_state_t *st, unsigned depth_left)
{
    if (st->payload >= st->payload_end) {
        return false;
    }
    zcbor_major_type_t major = ZCBOR_MAJOR_TYPE(*st->payload);
    if (major == ZCBOR_MAJOR_TYPE_TAG) {
        uint32_t tag;
        return depth_left > 0 && zcbor_tag_decode(st, &tag) && bb_cbor_skip(st, depth_left - 1);
    }
    if (major != ZCBOR_MAJOR_TYPE_LIST && major != ZCBOR_MAJOR_TYPE_MAP) {
        return zcbor_any_skip(st, NULL);
    }
    if (depth_left == 0) {
        return false;
    }
    bool list = major == ZCBOR_MAJOR_TYPE_LIST;
    if (!(list ? zcbor_list_start_decode(st) : zcbor_map_start_decode(st))) {
        return false;
    }
    while (!zcbor_array_at_end(st)) {
        if (!bb_cbor_skip(st, depth_left - 1)) {
            zcbor_list_map_end_force_decode(st);
            return false;
        }
    }
    return list ? zcbor_list_end_decode(st) : zcbor_map_end_decode(st);
}

static bool arg_parse(zcbor_state_t *st, bb_arg_t *a)
{
    memset(a, 0, sizeof(*a));
    if (st->payload >= st->payload_end) {
        return false;
    }
    a->raw = st->payload;
    uint8_t head = *st->payload;
    zcbor_major_type_t major = ZCBOR_MAJOR_TYPE(head);
    bool ok = false;
    switch (major) {
    case ZCBOR_MAJOR_TYPE_PINT:
        a->kind = BB_ARG_UINT;
        ok = zcbor_uint64_decode(st, &a->v.u);
        break;
    case ZCBOR_MAJOR_TYPE_NINT:
        a->kind = BB_ARG_NINT;
        ok = zcbor_int64_decode(st, &a->v.i);
        break;
    case ZCBOR_MAJOR_TYPE_BSTR:
    case ZCBOR_MAJOR_TYPE_TSTR: {
        struct zcbor_string s;
        a->kind = major == ZCBOR_MAJOR_TYPE_BSTR ? BB_ARG_BYTES : BB_ARG_TEXT;
        ok = major == ZCBOR_MAJOR_TYPE_BSTR ? zcbor_bstr_decode(st, &s) : zcbor_tstr_decode(st, &s);
        if (ok) {
            a->ptr = s.value;
            a->len = s.len;
        }
        break;
    }
    case ZCBOR_MAJOR_TYPE_SIMPLE:
        if (head == 0xF4 || head == 0xF5) {
            a->kind = BB_ARG_BOOL;
            ok = zcbor_bool_decode(st, &a->v.b);
        } else if (head == 0xF6) {
            a->kind = BB_ARG_NIL;
            ok = zcbor_nil_expect(st, NULL);
        }
        break;
    default:
        break;
    }
    if (!ok) {
        /* Not one of the scalar shapes above (or an integer zcbor cannot hold, or an
         * indefinite-length string): keep it as an opaque item. */
        zcbor_pop_error(st);
        st->payload = a->raw;
        a->kind = BB_ARG_OTHER;
        if (!bb_cbor_skip(st, BB_CBOR_MAX_DEPTH)) {
            return false;
        }
    }
    a->raw_len = (size_t)(st->payload - a->raw);
    return true;
}

int bb_request_parse(const uint8_t *payload, size_t len, bb_request_t *r, bool *id_known)
{
    zcbor_state_t st[BB_CBOR_STATES];
    bb_cbor_decode_init(st, BB_CBOR_STATES, payload, len);
    uint32_t kind;
    uint64_t method;

    memset(r, 0, sizeof(*r));
    *id_known = false;
    if (!zcbor_list_start_decode(st) || !zcbor_uint32_decode(st, &kind) || kind != BB_MSG_REQ
        || !zcbor_uint32_decode(st, &r->id)) {
        return BB_STATUS_MALFORMED;
    }
    *id_known = true;
    if (!zcbor_uint64_decode(st, &method)) {
        return BB_STATUS_MALFORMED;
    }
    /* Method numbers are small; anything wider is simply not a method we have. */
    r->method = method > UINT32_MAX ? UINT32_MAX : (uint32_t)method;
    unsigned n = 0;
    bool too_many = false;
    while (!zcbor_array_at_end(st)) {
        bb_arg_t spare;
        bb_arg_t *a = n < BB_MAX_ARGS ? &r->args[n] : &spare;
        if (!arg_parse(st, a)) {
            return BB_STATUS_MALFORMED;
        }
        if (n < BB_MAX_ARGS) {
            n++;
        } else {
            too_many = true;
        }
    }
    if (!zcbor_list_end_decode(st) || st->payload != payload + len) {
        return BB_STATUS_MALFORMED;
    }
    r->argc = (uint8_t)n;
    return too_many ? BB_STATUS_BAD_ARG_COUNT : BB_STATUS_OK;
}

static int arg_check(const bb_arg_t *a, const bb_field_spec_t *spec)
{
    if (a->kind == BB_ARG_NIL || a->kind == BB_ARG_ABSENT) {
        return spec->nullable ? BB_STATUS_OK : BB_STATUS_BAD_ARG_TYPE;
    }
    switch (spec->type) {
    case BB_T_UINT:
        if (a->kind != BB_ARG_UINT) {
            return BB_STATUS_BAD_ARG_TYPE;
        }
        if (a->v.u > UINT32_MAX || (spec->max != 0 && a->v.u > spec->max)) {
            return BB_STATUS_VALUE_TOO_LARGE;
        }
        return BB_STATUS_OK;
    case BB_T_INT:
        if (a->kind == BB_ARG_UINT) {
            return a->v.u > INT32_MAX ? BB_STATUS_VALUE_TOO_LARGE : BB_STATUS_OK;
        }
        if (a->kind == BB_ARG_NINT) {
            return a->v.i < INT32_MIN ? BB_STATUS_VALUE_TOO_LARGE : BB_STATUS_OK;
        }
        return BB_STATUS_BAD_ARG_TYPE;
    case BB_T_BOOL:
        return a->kind == BB_ARG_BOOL ? BB_STATUS_OK : BB_STATUS_BAD_ARG_TYPE;
    case BB_T_BYTES:
    case BB_T_STR:
        if (a->kind != (spec->type == BB_T_BYTES ? BB_ARG_BYTES : BB_ARG_TEXT)) {
            return BB_STATUS_BAD_ARG_TYPE;
        }
        return (spec->max != 0 && a->len > spec->max) ? BB_STATUS_VALUE_TOO_LARGE : BB_STATUS_OK;
    /* uuid and addr are byte strings of fixed sizes (2/4/16 and 6 bytes): a wrong size is a
     * wrong type, BAD_ARG_TYPE, like a text string in their place. VALUE_TOO_LARGE is kept for
     * values over a schema `max` (a limit, not a shape). */
    case BB_T_UUID:
        return (a->kind == BB_ARG_BYTES && (a->len == 2 || a->len == 4 || a->len == 16))
                   ? BB_STATUS_OK : BB_STATUS_BAD_ARG_TYPE;
    case BB_T_ADDR:
        return (a->kind == BB_ARG_BYTES && a->len == 6) ? BB_STATUS_OK : BB_STATUS_BAD_ARG_TYPE;
    case BB_T_ANY:
        return BB_STATUS_OK;
    default:
        return BB_STATUS_BAD_ARG_TYPE;
    }
}

int bb_request_validate(const bb_request_t *r)
{
    const bb_method_spec_t *m = bb_method_spec(r->method);
    if (m == NULL) {
        return BB_STATUS_UNKNOWN_METHOD;
    }
    if (r->argc < m->argc_min || r->argc > m->argc_max) {
        return BB_STATUS_BAD_ARG_COUNT;
    }
    for (unsigned i = 0; i < r->argc; i++) {
        int s = arg_check(&r->args[i], &m->args[i]);
        if (s != BB_STATUS_OK) {
            return s;
        }
    }
    return BB_STATUS_OK;
}
