/*
 * blebridge firmware configuration: every buffer size and limit of the core, in one place.
 * Protocol limits come from protocol/schema.toml through bb_proto.h (BB_MAX_*); this header
 * sizes the core's static memory from them. A port may override any value with -D.
 */
#ifndef BB_CONFIG_H
#define BB_CONFIG_H

#include "bb_proto.h"   /* generated: BB_MAX_FRAME, BB_MAX_ATTR_LEN, ... */

/* Frame buffers (bytes). A received frame is decoded in place; TX holds one encoded frame:
 * CBOR + 2 CRC bytes, COBS adds 1 byte per 254 and a delimiter. */
#ifndef BB_RX_FRAME_BUF
#define BB_RX_FRAME_BUF (BB_MAX_FRAME + 8)
#endif
#ifndef BB_TX_FRAME_BUF
#define BB_TX_FRAME_BUF (BB_MAX_FRAME + 8 + (BB_MAX_FRAME / 254) + 2)
#endif

/* Event queue (bytes of encoded events). Reliable events (connection, GATT, L2CAP, security)
 * and droppable ones (scan results, logs) have separate rings so that evicting the oldest scan
 * result never disturbs the others; a sequence number keeps their order on the wire. */
#ifndef BB_EVQ_RELIABLE_BYTES
#define BB_EVQ_RELIABLE_BYTES 6144
#endif
#ifndef BB_EVQ_DROPPABLE_BYTES
#define BB_EVQ_DROPPABLE_BYTES 2048
#endif

/* Local GATT database. */
#ifndef BB_MAX_SERVICES
#define BB_MAX_SERVICES 8
#endif
#ifndef BB_MAX_CHRS
#define BB_MAX_CHRS 32          /* characteristics over all services */
#endif
#ifndef BB_MAX_DSCS
#define BB_MAX_DSCS 32          /* descriptors over all characteristics */
#endif
#ifndef BB_ATTR_POOL_BYTES
#define BB_ATTR_POOL_BYTES 4096 /* attribute values (bump-allocated, reset on register) */
#endif
#ifndef BB_DEFAULT_ATTR_LEN
#define BB_DEFAULT_ATTR_LEN 20  /* buffer of an attribute registered without max_len (MicroPython) */
#endif

/* Connections and channels tracked by the core (for handle validation). */
#ifndef BB_MAX_CONNECTIONS
#define BB_MAX_CONNECTIONS 8
#endif
#ifndef BB_MAX_L2CAP_CHANNELS
#define BB_MAX_L2CAP_CHANNELS 8
#endif

/* Open board->host questions (read authorisation, L2CAP accept, secrets). */
#ifndef BB_MAX_QUESTIONS
#define BB_MAX_QUESTIONS 8
#endif

/* Firmware identity reported in the handshake. */
#ifndef BB_FW_VERSION
#define BB_FW_VERSION "0.1.0"
#endif
#ifndef BB_FW_BUILD
#define BB_FW_BUILD __DATE__ " " __TIME__
#endif

#endif /* BB_CONFIG_H */
