#include "bb_frame.h"

#include <string.h>

uint16_t bb_crc16(const uint8_t *data, size_t len)
{
    uint16_t crc = 0xFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(data[i] << 8);
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

size_t bb_frame_encode(const uint8_t *payload, size_t len, uint8_t *out, size_t cap)
{
    if (len == 0 || len > BB_MAX_FRAME || cap < BB_FRAME_WIRE_MAX(len)) {
        return 0;
    }
    uint16_t crc = bb_crc16(payload, len);
    size_t total = len + 2;
    size_t o = 1;
    size_t code_pos = 0;
    uint8_t code = 1;
    bool after_full = false;  /* the open block was started by a full block, not by a 0x00 */
    for (size_t i = 0; i < total; i++) {
        uint8_t x = i < len ? payload[i] : (uint8_t)(i == len ? crc & 0xFFu : crc >> 8);
        if (x == 0) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
            after_full = false;
            continue;
        }
        out[o++] = x;
        if (++code == 0xFF) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
            after_full = true;
        }
    }
    if (code == 1 && after_full) {
        o = code_pos;  /* data ended with a full block: no empty final block (canonical form) */
    } else {
        out[code_pos] = code;
    }
    out[o++] = 0;
    return o;
}

void bb_frame_decoder_init(bb_frame_decoder_t *d)
{
    memset(d, 0, sizeof(*d));
}

static void frame_restart(bb_frame_decoder_t *d)
{
    d->len = 0;
    d->raw = 0;
    d->code = 0;
    d->left = 0;
    d->discard = false;
}

static void frame_put(bb_frame_decoder_t *d, uint8_t x)
{
    if (d->len >= BB_FRAME_MAX_BODY) {
        d->discard = true;
        return;
    }
    d->buf[d->len++] = x;
}

static void frame_end(bb_frame_decoder_t *d, bb_frame_handler_t handler, void *ctx)
{
    if (d->raw == 0) {
        return; /* empty frame (two delimiters in a row) */
    }
    /* A frame needs at least one payload byte and the two CRC bytes. */
    if (d->discard) {
        d->oversize++;
    }
    if (d->discard || d->left != 0 || d->len < 3) {
        d->garbage_bytes += (uint32_t)d->raw;
        return;
    }
    size_t plen = d->len - 2;
    uint16_t want = (uint16_t)(d->buf[plen] | (d->buf[plen + 1] << 8));
    if (bb_crc16(d->buf, plen) != want) {
        d->crc_errors++;
        d->garbage_bytes += (uint32_t)d->raw;
        return;
    }
    d->frames_rx++;
    handler(ctx, d->buf, plen);
}

void bb_frame_decoder_feed(bb_frame_decoder_t *d, const uint8_t *data, size_t len,
                           bb_frame_handler_t handler, void *ctx)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t b = data[i];
        if (b == 0) {
            frame_end(d, handler, ctx);
            frame_restart(d);
            continue;
        }
        d->raw++;
        if (d->discard) {
            continue;
        }
        if (d->left == 0) {
            /* A new block: the previous one implied a 0x00 unless it was a full block. */
            if (d->code != 0 && d->code != 0xFF) {
                frame_put(d, 0);
            }
            d->code = b;
            d->left = (uint8_t)(b - 1);
        } else {
            frame_put(d, b);
            d->left--;
        }
    }
}
