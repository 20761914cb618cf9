#include "bb_evq.h"

#include <string.h>

void bb_ring_init(bb_ring_t *r, uint8_t *buf, size_t cap)
{
    r->buf = buf;
    r->cap = cap;
    r->head = 0;
    r->used = 0;
    r->count = 0;
}

static void ring_write(bb_ring_t *r, size_t at, const uint8_t *src, size_t n)
{
    at %= r->cap;
    size_t first = r->cap - at < n ? r->cap - at : n;
    memcpy(r->buf + at, src, first);
    memcpy(r->buf, src + first, n - first);
}

static void ring_read(const bb_ring_t *r, size_t at, uint8_t *dst, size_t n)
{
    at %= r->cap;
    size_t first = r->cap - at < n ? r->cap - at : n;
    memcpy(dst, r->buf + at, first);
    memcpy(dst + first, r->buf, n - first);
}

bool bb_ring_push(bb_ring_t *r, const bb_ring_entry_t *e, const uint8_t *body)
{
    size_t need = BB_RING_HDR + e->len;
    if (need > r->cap - r->used) {
        return false;
    }
    uint8_t hdr[BB_RING_HDR] = {
        (uint8_t)e->len, (uint8_t)(e->len >> 8), e->nitems, 0,
        (uint8_t)e->seq, (uint8_t)(e->seq >> 8), (uint8_t)(e->seq >> 16), (uint8_t)(e->seq >> 24),
    };
    size_t tail = r->head + r->used;
    ring_write(r, tail, hdr, BB_RING_HDR);
    ring_write(r, tail + BB_RING_HDR, body, e->len);
    r->used += need;
    r->count++;
    return true;
}

bool bb_ring_peek(const bb_ring_t *r, bb_ring_entry_t *e)
{
    if (r->count == 0) {
        return false;
    }
    uint8_t hdr[BB_RING_HDR];
    ring_read(r, r->head, hdr, BB_RING_HDR);
    e->len = (uint16_t)(hdr[0] | (hdr[1] << 8));
    e->nitems = hdr[2];
    e->seq = (uint32_t)hdr[4] | ((uint32_t)hdr[5] << 8) | ((uint32_t)hdr[6] << 16)
             | ((uint32_t)hdr[7] << 24);
    return true;
}

void bb_ring_pop(bb_ring_t *r, uint8_t *out)
{
    bb_ring_entry_t e;
    if (!bb_ring_peek(r, &e)) {
        return;
    }
    ring_read(r, r->head + BB_RING_HDR, out, e.len);
    bb_ring_drop(r);
}

void bb_ring_drop(bb_ring_t *r)
{
    bb_ring_entry_t e;
    if (!bb_ring_peek(r, &e)) {
        return;
    }
    r->head = (r->head + BB_RING_HDR + e.len) % r->cap;
    r->used -= BB_RING_HDR + e.len;
    r->count--;
}

void bb_evq_init(bb_evq_t *q)
{
    memset(q, 0, sizeof(*q));
    bb_ring_init(&q->reliable, q->reliable_buf, sizeof(q->reliable_buf));
    bb_ring_init(&q->droppable, q->droppable_buf, sizeof(q->droppable_buf));
}

int bb_evq_push(bb_evq_t *q, bool droppable, uint8_t nitems, const uint8_t *body, size_t len)
{
    bb_ring_t *r = droppable ? &q->droppable : &q->reliable;
    bb_ring_entry_t e = {(uint16_t)len, nitems, q->next_seq};
    if (len > UINT16_MAX || BB_RING_HDR + len > r->cap) {
        goto dropped;
    }
    if (droppable) {
        /* Oldest scan reports and logs make room for the newest. */
        while (BB_RING_HDR + len > r->cap - r->used) {
            bb_ring_drop(r);
            q->dropped_scan++;
            q->unreported_scan++;
        }
    }
    if (!bb_ring_push(r, &e, body)) {
        goto dropped;
    }
    q->next_seq++;
    uint32_t used = (uint32_t)(q->reliable.used + q->droppable.used);
    if (used > q->peak_bytes) {
        q->peak_bytes = used;
    }
    return 0;

dropped:
    bb_evq_note_refused(q, droppable);
    return -BB_STATUS_ENOMEM;
}

void bb_evq_note_refused(bb_evq_t *q, bool droppable)
{
    if (!droppable && q->port_holds_back) {
        q->stalled++;   /* the port delivers it again: nothing is lost */
        return;
    }
    bb_evq_note_drop(q, droppable);
}

void bb_evq_note_drop(bb_evq_t *q, bool droppable)
{
    if (droppable) {
        q->dropped_scan++;
        q->unreported_scan++;
    } else {
        q->dropped_other++;
        q->unreported_other++;
    }
}

/* The ring whose oldest entry was queued first (sequence numbers compared modulo 2^32). */
static bb_ring_t *evq_next_ring(const bb_evq_t *q)
{
    bb_ring_entry_t a, b;
    bool ha = bb_ring_peek(&q->reliable, &a);
    bool hb = bb_ring_peek(&q->droppable, &b);
    if (!ha && !hb) {
        return NULL;
    }
    bb_ring_t *rel = (bb_ring_t *)&q->reliable;
    bb_ring_t *drop = (bb_ring_t *)&q->droppable;
    if (!hb) {
        return rel;
    }
    if (!ha) {
        return drop;
    }
    return (int32_t)(a.seq - b.seq) < 0 ? rel : drop;
}

bool bb_evq_peek(const bb_evq_t *q, bb_ring_entry_t *e)
{
    bb_ring_t *r = evq_next_ring(q);
    return r != NULL && bb_ring_peek(r, e);
}

void bb_evq_pop(bb_evq_t *q, uint8_t *out)
{
    bb_ring_t *r = evq_next_ring(q);
    if (r != NULL) {
        bb_ring_pop(r, out);
    }
}

bool bb_evq_empty(const bb_evq_t *q)
{
    return q->reliable.count == 0 && q->droppable.count == 0;
}
