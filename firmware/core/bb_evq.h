/*
 * Event queue (docs/design.md "Event queue overflow policy").
 *
 * Two byte rings of length-prefixed entries: droppable events (SCAN_RESULT, LOG) and reliable
 * ones (everything else). Each entry carries a sequence number from one counter, so draining
 * the ring whose head has the older number first gives back the order in which the events were
 * raised. Overflow policy:
 *  - droppable ring full: its oldest entries are evicted until the new one fits;
 *  - reliable ring full: the new event is refused (bb_evq_push returns -ENOMEM, the bb_on_*
 *    caller passes that on to the port, which holds data back if it can) and counted;
 *  - every drop is counted since boot and since the last report; the core sends EVENTS_DROPPED
 *    with the unreported counts as soon as there is room in the outgoing frames.
 * Not thread-safe by itself: callers hold bb_port_critical_enter/exit around every call.
 */
#ifndef BB_EVQ_H
#define BB_EVQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bb_config.h"

/* Entry header in a ring: u16 body length, u8 item count, u8 unused, u32 sequence number. */
#define BB_RING_HDR 8

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t head;     /* offset of the oldest entry */
    size_t used;     /* bytes in use, headers included */
    uint16_t count;  /* entries */
} bb_ring_t;

typedef struct {
    uint16_t len;
    uint8_t nitems;
    uint32_t seq;
} bb_ring_entry_t;

void bb_ring_init(bb_ring_t *r, uint8_t *buf, size_t cap);
bool bb_ring_push(bb_ring_t *r, const bb_ring_entry_t *e, const uint8_t *body);
bool bb_ring_peek(const bb_ring_t *r, bb_ring_entry_t *e);
/* Copy the oldest entry's body to out (cap must hold e.len) and remove it. */
void bb_ring_pop(bb_ring_t *r, uint8_t *out);
void bb_ring_drop(bb_ring_t *r);

typedef struct {
    uint8_t reliable_buf[BB_EVQ_RELIABLE_BYTES];
    uint8_t droppable_buf[BB_EVQ_DROPPABLE_BYTES];
    bb_ring_t reliable;
    bb_ring_t droppable;
    uint32_t next_seq;
    uint32_t dropped_scan;      /* droppable events evicted or refused, since boot */
    uint32_t dropped_other;     /* reliable events lost, since boot */
    uint32_t stalled;           /* reliable events refused and held back by the port */
    bool port_holds_back;       /* bb_port_caps()->holds_back_events */
    uint32_t unreported_scan;   /* since the last EVENTS_DROPPED */
    uint32_t unreported_other;
    uint32_t peak_bytes;        /* most bytes ever queued in both rings together */
} bb_evq_t;

void bb_evq_init(bb_evq_t *q);
/* Queue the encoded items `code, fields...` (nitems of them). 0, or -ENOMEM when dropped. */
int bb_evq_push(bb_evq_t *q, bool droppable, uint8_t nitems, const uint8_t *body, size_t len);
/* Oldest queued event overall, without removing it. */
bool bb_evq_peek(const bb_evq_t *q, bb_ring_entry_t *e);
/* Remove the oldest event, copying its body to out (cap >= the peeked len). */
void bb_evq_pop(bb_evq_t *q, uint8_t *out);
bool bb_evq_empty(const bb_evq_t *q);
/* Count an event that could not even be encoded (too large) as dropped. */
void bb_evq_note_drop(bb_evq_t *q, bool droppable);
/* Count a reliable event refused for want of room: a stall when the port holds it back, else a drop. */
void bb_evq_note_refused(bb_evq_t *q, bool droppable);

#endif /* BB_EVQ_H */
