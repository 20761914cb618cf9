/*
 * Local GATT database of the core: the service/characteristic/descriptor tables handed to the
 * port, and the attribute value pool.
 *
 * Values live in one static pool of BB_ATTR_POOL_BYTES, bump-allocated and reset when services
 * are registered again. Each attribute owns a buffer of `cap` bytes (max_len, or
 * BB_DEFAULT_ATTR_LEN when registered with max_len 0) holding `len` bytes of value. As in
 * MicroPython: a local write longer than the buffer moves the value to a new, larger buffer
 * from the pool (the old one is not reused until the next registration); a peer write is cut
 * to the buffer; in append mode peer writes are appended and a local read returns and clears.
 * A value's address can change on a local write or set_buffer: the core then calls
 * bb_port_gatts_value_changed(), after which ports fetch it again with bb_core_gatts_value().
 */
#ifndef BB_GATTS_H
#define BB_GATTS_H

#include <stdbool.h>
#include <stdint.h>

#include "bb_msg.h"
#include "bb_port.h"

typedef struct {
    uint16_t handle;     /* value handle given by the port (0: not registered) */
    uint16_t len;        /* bytes of value */
    uint16_t cap;        /* bytes of buffer */
    uint16_t off;        /* buffer offset in the pool */
    bool append;         /* gatts_set_buffer(append=True) */
    bool fixed;          /* BB_FLAG_FIXED_LENGTH: len is always cap */
} bb_attr_t;

#define BB_MAX_ATTRS (BB_MAX_CHRS + BB_MAX_DSCS)

typedef struct {
    bb_gatts_svc_t svcs[BB_MAX_SERVICES];
    bb_gatts_chr_t chrs[BB_MAX_CHRS];
    bb_gatts_dsc_t dscs[BB_MAX_DSCS];
    bb_attr_t attrs[BB_MAX_ATTRS];    /* characteristics first, then descriptors */
    uint8_t svc_count, chr_count, dsc_count;
    uint16_t pool_used;
    uint8_t pool[BB_ATTR_POOL_BYTES];
} bb_gatts_db_t;

extern bb_gatts_db_t bb_gatts_db;

void bb_gatts_clear(void);
/* Decode a gatts_register_services `services` argument into the tables and the pool. Returns
 * BB_STATUS_OK, BAD_ARG_TYPE (wrong shape), VALUE_TOO_LARGE (max_len or value over
 * BB_MAX_ATTR_LEN), ENOMEM (tables or pool full) or EINVAL. */
int bb_gatts_build(const uint8_t *raw, size_t raw_len);
/* After bb_port_gatts_register filled the handles: index attributes by value handle. */
void bb_gatts_bind_handles(void);
bool bb_gatts_encode_handles(zcbor_state_t *res);

bb_attr_t *bb_gatts_attr(uint16_t handle);
uint8_t *bb_gatts_value(const bb_attr_t *a);
/* Local write (gatts_write): grow if needed. 0, -ENOMEM, -EINVAL (fixed length mismatch). */
int bb_gatts_local_write(bb_attr_t *a, const uint8_t *data, uint16_t len);
/* Peer write: stored cut to the buffer, appended in append mode; returns bytes stored. */
uint16_t bb_gatts_peer_write(bb_attr_t *a, const uint8_t *data, uint16_t len, uint16_t offset);
int bb_gatts_set_buffer(bb_attr_t *a, uint16_t len, bool append);

#endif /* BB_GATTS_H */
