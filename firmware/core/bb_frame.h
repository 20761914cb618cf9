/*
 * Wire framing (docs/design.md "Framing"): frame = COBS(payload || crc16_le) || 0x00.
 * crc16 is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out) over the
 * payload. COBS: a run of 254 non-zero bytes is a full block (code 0xFF, no implied zero).
 * Data that ends with a full block gets no empty final block (no trailing 0x01): the canonical
 * form that host/blebridge/framing.py and tests/vectors/frames.json use, so both sides put the
 * same bytes on the wire. The decoder also accepts the trailing 0x01 of Cheshire and Baker's
 * reference encoder.
 */
#ifndef BB_FRAME_H
#define BB_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bb_config.h"

/* Largest decoded frame body: payload (BB_MAX_FRAME) plus the 2 CRC bytes. */
#define BB_FRAME_MAX_BODY (BB_MAX_FRAME + 2)

uint16_t bb_crc16(const uint8_t *data, size_t len);

/* Worst-case wire size of a payload of `len` bytes: one COBS code byte per started 254-byte
 * block of payload+CRC, plus the final block code and the delimiter. */
#define BB_FRAME_WIRE_MAX(len) ((len) + 2 + ((len) + 2) / 254 + 2)

/* Encode `payload` as one wire frame into out[0..cap). Returns the bytes written (delimiter
 * included), or 0 when the payload is empty, longer than BB_MAX_FRAME, or out is too small. */
size_t bb_frame_encode(const uint8_t *payload, size_t len, uint8_t *out, size_t cap);

/* Called with each good payload; the bytes are valid during the call only. */
typedef void (*bb_frame_handler_t)(void *ctx, const uint8_t *payload, size_t len);

/* Incremental decoder: feed any chunking of the byte stream. Invariant between calls: buf holds
 * the `len` decoded bytes of the frame in progress; `left` is the count of data bytes still due
 * in the current COBS block (0: the next byte is a block code). */
typedef struct {
    uint8_t buf[BB_RX_FRAME_BUF];
    size_t len;
    size_t raw;           /* wire bytes of the frame in progress, delimiter excluded */
    uint8_t code;         /* code of the current COBS block, 0 before the first */
    uint8_t left;
    bool discard;         /* frame already invalid (oversize): skip to the next 0x00 */
    uint32_t frames_rx;   /* good frames delivered */
    uint32_t crc_errors;  /* frames with valid COBS whose CRC did not match */
    uint32_t garbage_bytes; /* wire bytes of every discarded frame (bad COBS, CRC, oversize) */
    uint32_t oversize;    /* frames discarded for growing past BB_FRAME_MAX_BODY decoded bytes */
} bb_frame_decoder_t;

void bb_frame_decoder_init(bb_frame_decoder_t *d);
void bb_frame_decoder_feed(bb_frame_decoder_t *d, const uint8_t *data, size_t len,
                           bb_frame_handler_t handler, void *ctx);

#endif /* BB_FRAME_H */
