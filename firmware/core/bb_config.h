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

/* Core internals (appended by the core): */
/* Largest encoded event `code, fields...` held in the event queue (bytes): an L2CAP SDU and its
 * header fields. Longer data from a port is truncated to its limit before queueing. */
#ifndef BB_EVENT_MAX_BYTES
#define BB_EVENT_MAX_BYTES (BB_MAX_L2CAP_SDU + 32)
#endif
/* Encoded responses waiting for the transport (bytes). Responses are never put in the event
 * rings; when this is full even after flushing, the response is dropped and counted. */
#ifndef BB_RSP_QUEUE_BYTES
#define BB_RSP_QUEUE_BYTES 2048
#endif
/* Frames one bb_core_poll() hands to the transport at most, so the main loop stays responsive. */
#ifndef BB_POLL_MAX_FRAMES
#define BB_POLL_MAX_FRAMES 8
#endif
/* Nesting depth accepted in `any` arguments (gatts_register_services needs 6). */
#ifndef BB_CBOR_MAX_DEPTH
#define BB_CBOR_MAX_DEPTH 8
#endif
/* Longest LOG text (bytes); longer lines are cut. */
#ifndef BB_LOG_MAX_TEXT
#define BB_LOG_MAX_TEXT 120
#endif

/* Port nrf_sd (SoftDevice S140) static memory. */
#ifndef BB_NRF_SD_MAX_CONNECTIONS
#define BB_NRF_SD_MAX_CONNECTIONS 4   /* links asked of the SoftDevice (fewer if RAM is short) */
#endif
#ifndef BB_NRF_SD_DISC_BATCH
#define BB_NRF_SD_DISC_BATCH 8        /* discovery results parked per link for UUID resolution */
#endif
#ifndef BB_NRF_SD_L2CAP_CHANNELS
#define BB_NRF_SD_L2CAP_CHANNELS 2    /* CoC channels; each owns one RX and one TX SDU buffer */
#endif
#ifndef BB_NRF_SD_ATTR_TAB_SIZE
#define BB_NRF_SD_ATTR_TAB_SIZE (BB_ATTR_POOL_BYTES + 2048) /* SoftDevice attribute table bytes */
#endif
#ifndef BB_NRF_SD_SCAN_DEDUP
#define BB_NRF_SD_SCAN_DEDUP 32       /* advertisers remembered for filter_duplicates */
#endif
#ifndef BB_NRF_SD_TX_WAIT_MS
/* Longest a notification or Write Command waits, in ms, for the SoftDevice's per-link queue
 * (BB_NRF_HVN_QUEUE / BB_NRF_WRCMD_QUEUE) to free a slot before the call fails with EAGAIN: a
 * slot frees after the peer's next connection event, so this covers intervals up to ~100 ms
 * with a retransmission. The core, and so the host link, wait meanwhile. */
#define BB_NRF_SD_TX_WAIT_MS 250
#endif
#ifndef BB_NRF_SD_QUEUED_WRITE_BYTES
/* Peer long-write queue in the SoftDevice's format: 6 bytes of header per Prepare Write entry
 * plus a 2-byte terminator; a BB_MAX_ATTR_LEN value at ATT MTU 23 takes 18-byte entries. */
#define BB_NRF_SD_QUEUED_WRITE_BYTES (BB_MAX_ATTR_LEN + 6 * ((BB_MAX_ATTR_LEN + 17) / 18) + 2)
#endif

/* NimBLE port (firmware/ports/nimble). */
#ifndef BB_NIMBLE_MBUF_PAYLOAD
#define BB_NIMBLE_MBUF_PAYLOAD 256  /* bytes of L2CAP SDU data in one mbuf block */
#endif
#ifndef BB_NIMBLE_MBUF_BLOCKS
#define BB_NIMBLE_MBUF_BLOCKS 40    /* 4 channels each holding one full RX and one full TX SDU */
#endif
#ifndef BB_NIMBLE_L2CAP_SERVERS
#define BB_NIMBLE_L2CAP_SERVERS 4   /* PSMs listened on since the radio was turned on */
#endif
#ifndef BB_NIMBLE_GATTC_READS
#define BB_NIMBLE_GATTC_READS 2     /* concurrent long reads, each buffering BB_MAX_ATTR_LEN bytes */
#endif
#ifndef BB_NIMBLE_BOND_CACHE
/* Security records (a peer's keys, or ours for a peer) kept on the board, 88 bytes each: a bond
 * lookup NimBLE makes while the core task is inside NimBLE (so no store question can be asked)
 * is answered from here instead of "not found". Filled at radio start and by every lookup. */
#define BB_NIMBLE_BOND_CACHE 8
#endif
#ifndef BB_NIMBLE_DEFER_QUEUE
#define BB_NIMBLE_DEFER_QUEUE 16    /* calls handed from the core task to the NimBLE host task */
#endif
#ifndef BB_NIMBLE_RX_STREAM_BYTES
#define BB_NIMBLE_RX_STREAM_BYTES 2048 /* host link bytes between the RX task and the core task */
#endif

/* Port sim (firmware/ports/sim): the air link to the Bumble air process. */
#ifndef BB_SIM_AIR_MSG_BUF
#define BB_SIM_AIR_MSG_BUF (BB_MAX_FRAME)      /* CBOR bytes of one message to or from the air */
#endif
#ifndef BB_SIM_AIR_EVQ_BYTES
#define BB_SIM_AIR_EVQ_BYTES 32768  /* air events held while a port call waits or the core is full */
#endif
/* The air's window: bytes of events it sends a board ahead of the board's acks. Set by the air
 * (EVENT_WINDOW_BYTES, host/blebridge/sim/board.py; tests/sim/test_air.py checks both agree). */
#define BB_SIM_AIR_WINDOW_BYTES 8192
#ifndef BB_SIM_AIR_ACK_MIN_BYTES
/* Events delivered before the port acknowledges them to the air (fewer acks, less air work).
 * Must stay below BB_SIM_AIR_WINDOW_BYTES less one largest message, or the air could hold an
 * event back while the port waits idle (checked in bb_port_sim.c). */
#define BB_SIM_AIR_ACK_MIN_BYTES 2048
#endif
#ifndef BB_SIM_AIR_CALL_TIMEOUT_MS
#define BB_SIM_AIR_CALL_TIMEOUT_MS 3000 /* an op the air has not answered by then: -ETIMEDOUT */
#endif
#ifndef BB_SIM_HUP_RETRY_MS
#define BB_SIM_HUP_RETRY_MS 50      /* host closed the pty: look again for a new opener this often */
#endif

#endif /* BB_CONFIG_H */
