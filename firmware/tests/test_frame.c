/* Framing: COBS + CRC-16/CCITT-FALSE, incremental decoding. */
#include <stdlib.h>
#include <string.h>

#include "bb_frame.h"
#include "tb.h"
#include "tests.h"

typedef struct {
    unsigned n;
    size_t lens[64];
    uint8_t data[64][BB_MAX_FRAME];
} got_t;

static got_t got;

static void collect(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    if (got.n < 64) {
        memcpy(got.data[got.n], p, len);
        got.lens[got.n++] = len;
    }
}

static bb_frame_decoder_t dec;

static void feed(const uint8_t *p, size_t n)
{
    bb_frame_decoder_feed(&dec, p, n, collect, NULL);
}

static void setup(void)
{
    memset(&got, 0, sizeof(got));
    bb_frame_decoder_init(&dec);
}

static void crc16_check_value_is_0x29b1(void)
{
    TB_CHECK_EQ(bb_crc16((const uint8_t *)"123456789", 9), 0x29B1);
}

static void frame_carries_crc_little_endian_before_cobs(void)
{
    /* payload 0x01 0x02: no zero anywhere, so COBS is one block: code, bytes, delimiter */
    const uint8_t payload[] = {0x01, 0x02};
    uint16_t crc = bb_crc16(payload, 2);
    uint8_t out[16];
    size_t n = bb_frame_encode(payload, 2, out, sizeof(out));
    TB_CHECK((crc & 0xFF) != 0 && (crc >> 8) != 0);
    TB_CHECK_EQ(n, 6);
    TB_CHECK_EQ(out[0], 5);
    TB_CHECK_EQ(out[3], crc & 0xFF);
    TB_CHECK_EQ(out[4], crc >> 8);
    TB_CHECK_EQ(out[5], 0);
}

static void frames_survive_random_chunking_with_garbage_between(void)
{
    setup();
    static uint8_t stream[200000];
    static uint8_t want[40][BB_MAX_FRAME];
    size_t want_len[40];
    size_t sl = 0;
    srand(1234);
    for (int f = 0; f < 40; f++) {
        /* garbage: boot text ending in a delimiter */
        int g = rand() % 20;
        for (int i = 0; i < g; i++) {
            stream[sl++] = (uint8_t)(1 + rand() % 255);
        }
        if (g) {
            stream[sl++] = 0;
        }
        want_len[f] = 1 + (size_t)rand() % BB_MAX_FRAME;
        for (size_t i = 0; i < want_len[f]; i++) {
            want[f][i] = (uint8_t)(rand() % 4 == 0 ? 0 : rand());
        }
        sl += bb_frame_encode(want[f], want_len[f], stream + sl, sizeof(stream) - sl);
    }
    for (size_t off = 0; off < sl;) {
        size_t c = 1 + (size_t)rand() % 300;
        if (c > sl - off) {
            c = sl - off;
        }
        feed(stream + off, c);
        off += c;
    }
    TB_CHECK_EQ(got.n, 40);
    for (int f = 0; f < 40; f++) {
        TB_CHECK_EQ(got.lens[f], want_len[f]);
        TB_CHECK(memcmp(got.data[f], want[f], want_len[f]) == 0);
    }
    TB_CHECK_EQ(dec.frames_rx, 40);
    TB_CHECK_EQ(dec.crc_errors, 0);
}

static void crc_mismatch_is_counted_and_frame_skipped(void)
{
    setup();
    uint8_t out[64];
    const uint8_t payload[] = {0x82, 0x01, 0x02};
    size_t n = bb_frame_encode(payload, 3, out, sizeof(out));
    out[2] ^= 0x40;  /* a payload byte, still non-zero */
    feed(out, n);
    n = bb_frame_encode(payload, 3, out, sizeof(out));
    feed(out, n);
    TB_CHECK_EQ(dec.crc_errors, 1);
    TB_CHECK_EQ(dec.garbage_bytes, n - 1);
    TB_CHECK_EQ(got.n, 1);
}

static void oversize_frame_is_discarded_and_next_frame_decodes(void)
{
    setup();
    static uint8_t big[3000];
    memset(big, 0x41, sizeof(big));
    feed(big, sizeof(big));
    uint8_t zero = 0;
    feed(&zero, 1);
    uint8_t out[64];
    const uint8_t payload[] = {0xF6};
    size_t n = bb_frame_encode(payload, 1, out, sizeof(out));
    feed(out, n);
    TB_CHECK_EQ(dec.garbage_bytes, sizeof(big));
    TB_CHECK_EQ(dec.crc_errors, 0);
    TB_CHECK_EQ(got.n, 1);
    TB_CHECK_EQ(got.lens[0], 1);
}

static void frame_of_max_payload_is_accepted(void)
{
    setup();
    static uint8_t payload[BB_MAX_FRAME];
    static uint8_t out[BB_FRAME_WIRE_MAX(BB_MAX_FRAME)];
    memset(payload, 7, sizeof(payload));
    size_t n = bb_frame_encode(payload, sizeof(payload), out, sizeof(out));
    TB_CHECK(n > 0);
    feed(out, n);
    TB_CHECK_EQ(got.n, 1);
    TB_CHECK_EQ(got.lens[0], BB_MAX_FRAME);
}

static void encoder_refuses_payload_over_max_frame(void)
{
    static uint8_t payload[BB_MAX_FRAME + 1];
    static uint8_t out[2 * BB_MAX_FRAME];
    memset(payload, 1, sizeof(payload));
    TB_CHECK_EQ(bb_frame_encode(payload, sizeof(payload), out, sizeof(out)), 0);
}

static void encoder_refuses_too_small_buffer(void)
{
    const uint8_t payload[] = {1, 2, 3};
    uint8_t out[5];
    TB_CHECK_EQ(bb_frame_encode(payload, 3, out, sizeof(out)), 0);
}

/* 252 bytes of `fill` whose last byte is chosen so that neither CRC byte is zero: payload + CRC
 * is then a run of exactly 254 non-zero bytes, one full COBS block. */
static void fill_zero_free_with_zero_free_crc(uint8_t payload[252], uint8_t fill)
{
    memset(payload, fill, 252);
    for (int k = 1; k < 256; k++) {
        payload[251] = (uint8_t)k;
        uint16_t crc = bb_crc16(payload, 252);
        if ((crc & 0xFF) != 0 && (crc >> 8) != 0) {
            return;
        }
    }
}

/* A payload whose payload+CRC is exactly 254 non-zero bytes: one full block and no final 0x01,
 * the canonical form of host/blebridge/framing.py and tests/vectors/frames.json. */
static void cobs_254_byte_run_at_end_is_one_full_block_without_final_01(void)
{
    uint8_t payload[252];
    fill_zero_free_with_zero_free_crc(payload, 0x55);
    uint8_t out[300];
    size_t n = bb_frame_encode(payload, sizeof(payload), out, sizeof(out));
    TB_CHECK_EQ(n, 1 + 254 + 1);
    TB_CHECK_EQ(out[0], 0xFF);
    TB_CHECK_EQ(out[255], 0x00);
    setup();
    feed(out, n);
    TB_CHECK_EQ(got.n, 1);
    TB_CHECK_EQ(got.lens[0], sizeof(payload));
}

/* Cheshire and Baker's reference encoder ends such data with one more block (0x01). */
static void cobs_decoder_accepts_full_block_with_final_01(void)
{
    uint8_t payload[252];
    fill_zero_free_with_zero_free_crc(payload, 0x33);
    uint8_t out[300];
    size_t n = bb_frame_encode(payload, sizeof(payload), out, sizeof(out));
    out[n - 1] = 0x01;  /* FF, 254 bytes, 01, delimiter */
    out[n] = 0x00;
    setup();
    feed(out, n + 1);
    TB_CHECK_EQ(got.n, 1);
    TB_CHECK_EQ(got.lens[0], sizeof(payload));
    TB_CHECK_EQ(dec.garbage_bytes, 0);
}

static void cobs_runs_around_254_roundtrip(void)
{
    static const size_t lens[] = {253, 254, 255, 508, 509, 1000};
    for (size_t t = 0; t < sizeof(lens) / sizeof(lens[0]); t++) {
        for (int zero_at = -1; zero_at < 2; zero_at++) {
            static uint8_t payload[1200];
            static uint8_t out[1400];
            memset(payload, 0xA5, lens[t]);
            if (zero_at == 0) {
                payload[0] = 0;
            } else if (zero_at == 1) {
                payload[lens[t] - 1] = 0;
            }
            size_t n = bb_frame_encode(payload, lens[t], out, sizeof(out));
            TB_CHECK(n > 0);
            TB_CHECK(memchr(out, 0, n - 1) == NULL);
            setup();
            feed(out, n);
            TB_CHECK_EQ(got.n, 1);
            TB_CHECK_EQ(got.lens[0], lens[t]);
            TB_CHECK(memcmp(got.data[0], payload, lens[t]) == 0);
        }
    }
}

static void empty_frames_are_ignored_without_counting(void)
{
    setup();
    const uint8_t zeros[4] = {0};
    feed(zeros, sizeof(zeros));
    TB_CHECK_EQ(dec.garbage_bytes, 0);
    TB_CHECK_EQ(dec.crc_errors, 0);
    TB_CHECK_EQ(got.n, 0);
}

static void boot_text_before_a_frame_counts_as_garbage(void)
{
    setup();
    const char *text = "ets Jun  8 2016 00:22:57\r\nrst:0x1\r\n";
    feed((const uint8_t *)text, strlen(text));
    uint8_t out[16];
    const uint8_t payload[] = {0x80};
    size_t n = bb_frame_encode(payload, 1, out, sizeof(out));
    feed(out, n);
    /* The text and the frame run together up to the first delimiter: both are lost. */
    TB_CHECK_EQ(got.n, 0);
    TB_CHECK_EQ(dec.garbage_bytes, strlen(text) + n - 1);
    feed(out, n);
    TB_CHECK_EQ(got.n, 1);
}

void run_frame_tests(void)
{
    TB_RUN(crc16_check_value_is_0x29b1);
    TB_RUN(frame_carries_crc_little_endian_before_cobs);
    TB_RUN(frames_survive_random_chunking_with_garbage_between);
    TB_RUN(crc_mismatch_is_counted_and_frame_skipped);
    TB_RUN(oversize_frame_is_discarded_and_next_frame_decodes);
    TB_RUN(frame_of_max_payload_is_accepted);
    TB_RUN(encoder_refuses_payload_over_max_frame);
    TB_RUN(encoder_refuses_too_small_buffer);
    TB_RUN(cobs_254_byte_run_at_end_is_one_full_block_without_final_01);
    TB_RUN(cobs_decoder_accepts_full_block_with_final_01);
    TB_RUN(cobs_runs_around_254_roundtrip);
    TB_RUN(empty_frames_are_ignored_without_counting);
    TB_RUN(boot_text_before_a_frame_counts_as_garbage);
}
