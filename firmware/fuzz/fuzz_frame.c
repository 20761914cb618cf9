/*
 * libFuzzer harness: the frame decoder (bb_frame.c) on any byte stream.
 *
 * Checked on every input, besides ASan/UBSan:
 *  - feeding the input in one chunk or in input-derived chunks gives the same payloads and
 *    counters (the decoder is chunking-independent);
 *  - the counters add up: every byte is a delimiter, a byte of a delivered frame, a garbage
 *    byte, or a byte of the frame still in progress;
 *  - every payload is 1..BB_MAX_FRAME bytes;
 *  - after whatever the input left behind, a delimiter and a frame encoded by bb_frame_encode
 *    (payload: the input's first bytes) deliver exactly that payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bb_frame.h"

typedef struct {
    const bb_frame_decoder_t *dec;
    uint32_t frames;
    uint32_t hash;          /* FNV-1a over every payload's length and bytes */
    uint64_t frame_bytes;   /* wire bytes of delivered frames, delimiters excluded */
    const uint8_t *last;    /* bytes of the last payload (valid during the handler only) */
    size_t last_len;
    uint8_t last_copy[BB_MAX_FRAME];
} sink_t;

static void hash_byte(sink_t *s, uint8_t b)
{
    s->hash = (s->hash ^ b) * 16777619u;
}

static void on_payload(void *ctx, const uint8_t *p, size_t len)
{
    sink_t *s = ctx;
    if (len == 0 || len > BB_MAX_FRAME) {
        abort();
    }
    s->frames++;
    s->frame_bytes += s->dec->raw;  /* frame_end runs the handler before the restart */
    hash_byte(s, (uint8_t)len);
    hash_byte(s, (uint8_t)(len >> 8));
    for (size_t i = 0; i < len; i++) {
        hash_byte(s, p[i]);
    }
    memcpy(s->last_copy, p, len);
    s->last_len = len;
}

static void sink_init(sink_t *s, const bb_frame_decoder_t *dec)
{
    memset(s, 0, sizeof(*s));
    s->dec = dec;
    s->hash = 2166136261u;
}

static bool same_counters(const bb_frame_decoder_t *a, const bb_frame_decoder_t *b)
{
    return a->frames_rx == b->frames_rx && a->crc_errors == b->crc_errors
           && a->garbage_bytes == b->garbage_bytes && a->oversize == b->oversize
           && a->raw == b->raw && a->len == b->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bb_frame_decoder_t whole, chunked, fresh;
    static sink_t s_whole, s_chunked, s_fresh;

    bb_frame_decoder_init(&whole);
    sink_init(&s_whole, &whole);
    bb_frame_decoder_feed(&whole, data, size, on_payload, &s_whole);

    /* Chunk sizes 1..64 from a generator seeded by the input, so they vary with it. */
    bb_frame_decoder_init(&chunked);
    sink_init(&s_chunked, &chunked);
    uint32_t rng = 0x9E3779B9u ^ (uint32_t)size ^ (size > 0 ? data[0] : 0);
    for (size_t off = 0; off < size;) {
        rng = rng * 1103515245u + 12345u;
        size_t n = 1 + (rng >> 16) % 64;
        if (n > size - off) {
            n = size - off;
        }
        bb_frame_decoder_feed(&chunked, data + off, n, on_payload, &s_chunked);
        off += n;
    }
    if (!same_counters(&whole, &chunked) || s_whole.hash != s_chunked.hash
        || s_whole.frames != s_chunked.frames || s_whole.frames != whole.frames_rx) {
        abort();
    }

    size_t zeros = 0;
    for (size_t i = 0; i < size; i++) {
        zeros += data[i] == 0;
    }
    if ((uint64_t)size != zeros + whole.garbage_bytes + s_whole.frame_bytes + whole.raw) {
        abort();
    }
    if (whole.crc_errors > size || whole.oversize > size) {
        abort();
    }

    /* Resynchronisation and round trip. */
    static uint8_t wire[BB_FRAME_WIRE_MAX(BB_MAX_FRAME)];
    size_t plen = size < BB_MAX_FRAME ? size : BB_MAX_FRAME;
    if (plen > 0) {
        size_t n = bb_frame_encode(data, plen, wire, sizeof(wire));
        if (n < plen + 4 || n > BB_FRAME_WIRE_MAX(plen) || wire[n - 1] != 0
            || memchr(wire, 0, n - 1) != NULL) {
            abort();
        }
        bb_frame_decoder_init(&fresh);
        sink_init(&s_fresh, &fresh);
        bb_frame_decoder_feed(&fresh, wire, n, on_payload, &s_fresh);
        if (s_fresh.frames != 1 || s_fresh.last_len != plen || memcmp(s_fresh.last_copy, data, plen)
            || fresh.garbage_bytes != 0 || s_fresh.frame_bytes != n - 1) {
            abort();
        }
        uint32_t before = s_whole.frames;
        static const uint8_t delim = 0;
        bb_frame_decoder_feed(&whole, &delim, 1, on_payload, &s_whole);
        bb_frame_decoder_feed(&whole, wire, n, on_payload, &s_whole);
        if (s_whole.frames < before + 1 || s_whole.last_len != plen
            || memcmp(s_whole.last_copy, data, plen) != 0) {
            abort();
        }
    }
    return 0;
}
