#include "bb_gatts.h"

#include <string.h>

#include "bb_proto.h"

bb_gatts_db_t bb_gatts_db;

void bb_gatts_clear(void)
{
    bb_gatts_db_t *db = &bb_gatts_db;
    db->svc_count = db->chr_count = db->dsc_count = 0;
    db->pool_used = 0;
    memset(db->attrs, 0, sizeof(db->attrs));
}

static bool pool_alloc(uint16_t size, uint16_t *off)
{
    bb_gatts_db_t *db = &bb_gatts_db;
    if (size > sizeof(db->pool) - db->pool_used) {
        return false;
    }
    *off = db->pool_used;
    db->pool_used = (uint16_t)(db->pool_used + size);
    return true;
}

uint8_t *bb_gatts_value(const bb_attr_t *a)
{
    return &bb_gatts_db.pool[a->off];
}

/* Decoded form of one characteristic or descriptor entry. */
typedef struct {
    bb_uuid_t uuid;
    uint32_t flags;
    uint32_t max_len;
    struct zcbor_string init;
} attr_spec_t;

static bool uuid_decode(zcbor_state_t *st, bb_uuid_t *u)
{
    struct zcbor_string s;
    if (!zcbor_bstr_decode(st, &s) || (s.len != 2 && s.len != 4 && s.len != 16)) {
        return false;
    }
    u->len = (uint8_t)s.len;
    memcpy(u->bytes, s.value, s.len);
    return true;
}

/* uuid, flags, max_len, initial value: the common head of chr and dsc entries. */
static bool attr_head_decode(zcbor_state_t *st, attr_spec_t *a)
{
    return uuid_decode(st, &a->uuid) && zcbor_uint32_decode(st, &a->flags)
           && zcbor_uint32_decode(st, &a->max_len) && zcbor_bstr_decode(st, &a->init);
}

/* Give an attribute its buffer and initial value. */
static int attr_setup(bb_attr_t *at, const attr_spec_t *a, uint16_t *max_len_out)
{
    if (a->max_len > BB_MAX_ATTR_LEN || a->init.len > BB_MAX_ATTR_LEN) {
        return BB_STATUS_VALUE_TOO_LARGE;
    }
    bool fixed = (a->flags & BB_FLAG_FIXED_LENGTH) != 0;
    uint16_t cap = a->max_len != 0 ? (uint16_t)a->max_len : BB_DEFAULT_ATTR_LEN;
    if (fixed && a->init.len > cap) {
        return BB_STATUS_EINVAL;
    }
    if (a->init.len > cap) {
        cap = (uint16_t)a->init.len;  /* as a local write of the initial value would grow it */
    }
    memset(at, 0, sizeof(*at));
    if (!pool_alloc(cap, &at->off)) {
        return BB_STATUS_ENOMEM;
    }
    at->cap = cap;
    at->fixed = fixed;
    uint8_t *v = bb_gatts_value(at);
    memset(v, 0, cap);
    memcpy(v, a->init.value, a->init.len);
    at->len = fixed ? cap : (uint16_t)a->init.len;
    *max_len_out = cap;
    return BB_STATUS_OK;
}

static int dsc_build(zcbor_state_t *st)
{
    bb_gatts_db_t *db = &bb_gatts_db;
    attr_spec_t a;
    if (!zcbor_list_start_decode(st) || !attr_head_decode(st, &a)
        || !zcbor_list_end_decode(st)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    if (db->dsc_count >= BB_MAX_DSCS) {
        return BB_STATUS_ENOMEM;
    }
    bb_gatts_dsc_t *d = &db->dscs[db->dsc_count];
    memset(d, 0, sizeof(*d));
    bb_attr_t *at = &db->attrs[BB_MAX_CHRS + db->dsc_count];
    int s = attr_setup(at, &a, &d->max_len);
    if (s != BB_STATUS_OK) {
        return s;
    }
    d->uuid = a.uuid;
    d->flags = a.flags;
    d->init = bb_gatts_value(at);
    d->init_len = at->len;
    db->dsc_count++;
    return BB_STATUS_OK;
}

static int chr_build(zcbor_state_t *st)
{
    bb_gatts_db_t *db = &bb_gatts_db;
    attr_spec_t a;
    if (!zcbor_list_start_decode(st) || !attr_head_decode(st, &a)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    if (db->chr_count >= BB_MAX_CHRS) {
        return BB_STATUS_ENOMEM;
    }
    bb_gatts_chr_t *c = &db->chrs[db->chr_count];
    memset(c, 0, sizeof(*c));
    bb_attr_t *at = &db->attrs[db->chr_count];
    int s = attr_setup(at, &a, &c->max_len);
    if (s != BB_STATUS_OK) {
        return s;
    }
    c->uuid = a.uuid;
    c->flags = a.flags;
    c->init = bb_gatts_value(at);
    c->init_len = at->len;
    c->dscs = &db->dscs[db->dsc_count];
    db->chr_count++;
    if (!zcbor_list_start_decode(st)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    while (!zcbor_array_at_end(st)) {
        s = dsc_build(st);
        if (s != BB_STATUS_OK) {
            return s;
        }
        c->dsc_count++;
    }
    if (!zcbor_list_end_decode(st) || !zcbor_list_end_decode(st)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    return BB_STATUS_OK;
}

static int svc_build(zcbor_state_t *st)
{
    bb_gatts_db_t *db = &bb_gatts_db;
    if (!zcbor_list_start_decode(st)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    if (db->svc_count >= BB_MAX_SERVICES) {
        return BB_STATUS_ENOMEM;
    }
    bb_gatts_svc_t *sv = &db->svcs[db->svc_count];
    memset(sv, 0, sizeof(*sv));
    if (!uuid_decode(st, &sv->uuid) || !zcbor_list_start_decode(st)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    sv->chrs = &db->chrs[db->chr_count];
    db->svc_count++;
    while (!zcbor_array_at_end(st)) {
        int s = chr_build(st);
        if (s != BB_STATUS_OK) {
            return s;
        }
        sv->chr_count++;
    }
    if (!zcbor_list_end_decode(st)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    /* Optional third element: secondary (absent: a primary service). */
    if (!zcbor_array_at_end(st) && !zcbor_bool_decode(st, &sv->secondary)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    if (!zcbor_list_end_decode(st)) {
        return BB_STATUS_BAD_ARG_TYPE;
    }
    return BB_STATUS_OK;
}

int bb_gatts_build(const uint8_t *raw, size_t raw_len)
{
    zcbor_state_t st[BB_CBOR_STATES];
    bb_cbor_decode_init(st, BB_CBOR_STATES, raw, raw_len);
    bb_gatts_clear();
    int s = BB_STATUS_OK;
    if (!zcbor_list_start_decode(st)) {
        s = BB_STATUS_BAD_ARG_TYPE;
    }
    while (s == BB_STATUS_OK && !zcbor_array_at_end(st)) {
        s = svc_build(st);
    }
    if (s == BB_STATUS_OK && !zcbor_list_end_decode(st)) {
        s = BB_STATUS_BAD_ARG_TYPE;
    }
    if (s != BB_STATUS_OK) {
        bb_gatts_clear();
    }
    return s;
}

void bb_gatts_bind_handles(void)
{
    bb_gatts_db_t *db = &bb_gatts_db;
    for (unsigned i = 0; i < db->chr_count; i++) {
        db->attrs[i].handle = db->chrs[i].value_handle;
    }
    for (unsigned i = 0; i < db->dsc_count; i++) {
        db->attrs[BB_MAX_CHRS + i].handle = db->dscs[i].handle;
    }
}

bool bb_gatts_encode_handles(zcbor_state_t *res)
{
    bb_gatts_db_t *db = &bb_gatts_db;
    bool ok = zcbor_list_start_encode(res, BB_MAX_SERVICES);
    for (unsigned s = 0; ok && s < db->svc_count; s++) {
        const bb_gatts_svc_t *sv = &db->svcs[s];
        ok = zcbor_list_start_encode(res, 2) && zcbor_uint32_put(res, sv->handle)
             && zcbor_list_start_encode(res, BB_MAX_CHRS);
        for (unsigned c = 0; ok && c < sv->chr_count; c++) {
            const bb_gatts_chr_t *ch = &sv->chrs[c];
            ok = zcbor_list_start_encode(res, 4) && zcbor_uint32_put(res, ch->decl_handle)
                 && zcbor_uint32_put(res, ch->value_handle) && zcbor_uint32_put(res, ch->cccd_handle)
                 && zcbor_list_start_encode(res, BB_MAX_DSCS);
            for (unsigned d = 0; ok && d < ch->dsc_count; d++) {
                ok = zcbor_uint32_put(res, ch->dscs[d].handle);
            }
            ok = ok && zcbor_list_end_encode(res, BB_MAX_DSCS) && zcbor_list_end_encode(res, 4);
        }
        ok = ok && zcbor_list_end_encode(res, BB_MAX_CHRS) && zcbor_list_end_encode(res, 2);
    }
    return ok && zcbor_list_end_encode(res, BB_MAX_SERVICES);
}

bb_attr_t *bb_gatts_attr(uint16_t handle)
{
    if (handle == 0) {
        return NULL;
    }
    for (unsigned i = 0; i < BB_MAX_ATTRS; i++) {
        if (bb_gatts_db.attrs[i].handle == handle) {
            return &bb_gatts_db.attrs[i];
        }
    }
    return NULL;
}

int bb_gatts_local_write(bb_attr_t *a, const uint8_t *data, uint16_t len)
{
    if (a->fixed && len != a->cap) {
        return -BB_STATUS_EINVAL;
    }
    if (len > a->cap) {
        uint16_t off;
        if (!pool_alloc(len, &off)) {
            return -BB_STATUS_ENOMEM;
        }
        a->off = off;
        a->cap = len;
    }
    memcpy(bb_gatts_value(a), data, len);
    a->len = len;
    return 0;
}

uint16_t bb_gatts_peer_write(bb_attr_t *a, const uint8_t *data, uint16_t len, uint16_t offset)
{
    uint8_t *v = bb_gatts_value(a);
    uint16_t at = a->append ? a->len : offset;
    if (at > a->cap) {
        at = a->cap;
    }
    uint16_t n = (uint16_t)(a->cap - at) < len ? (uint16_t)(a->cap - at) : len;
    memcpy(v + at, data, n);
    if (!a->fixed) {
        a->len = (uint16_t)(at + n);
    }
    return n;
}

int bb_gatts_set_buffer(bb_attr_t *a, uint16_t len, bool append)
{
    if (len > a->cap) {
        uint16_t off;
        if (!pool_alloc(len, &off)) {
            return -BB_STATUS_ENOMEM;
        }
        a->off = off;
    }
    a->cap = len;
    a->len = a->fixed ? len : 0;
    if (a->fixed) {
        memset(bb_gatts_value(a), 0, len);
    }
    a->append = append;
    return 0;
}
