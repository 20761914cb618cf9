/*
 * Test driver for firmware/core/bb_frame.c, built by tests/e2e/test_framing_c_vs_python.py.
 *
 * Reads commands from stdin, one per line, hex arguments; writes results to stdout:
 *   C <hex>   -> "C <crc16 decimal>"
 *   E <hex>   -> "E <hex of the wire frame>" or "E !" when bb_frame_encode refuses the payload
 *   D <hex>   -> feeds the bytes to one persistent decoder; "F <hex>" for each payload it completes
 *   S         -> "S <frames_rx> <crc_errors> <garbage_bytes> <oversize>"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bb_frame.h"

/* Longest argument in bytes (a chunk of the decoder's input stream). */
#define ARG_MAX (1u << 20)

static uint8_t arg[ARG_MAX];
static uint8_t wire[BB_FRAME_WIRE_MAX(BB_MAX_FRAME)];
static bb_frame_decoder_t dec;

static void put_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        putchar(digits[p[i] >> 4]);
        putchar(digits[p[i] & 0xF]);
    }
}

static int hex_val(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Read hex digits up to the end of the line into arg; returns the byte count, -1 on bad input. */
static long read_hex_line(void)
{
    size_t n = 0;
    int hi = -1;
    for (;;) {
        int c = getchar();
        if (c == EOF || c == '\n') {
            return hi < 0 ? (long)n : -1;
        }
        if (c == ' ' || c == '\r') {
            continue;
        }
        int v = hex_val(c);
        if (v < 0 || n >= ARG_MAX) {
            return -1;
        }
        if (hi < 0) {
            hi = v;
        } else {
            arg[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
}

static void on_payload(void *ctx, const uint8_t *payload, size_t len)
{
    (void)ctx;
    fputs("F ", stdout);
    put_hex(payload, len);
    putchar('\n');
}

int main(void)
{
    bb_frame_decoder_init(&dec);
    int cmd;
    while ((cmd = getchar()) != EOF) {
        if (cmd == '\n') {
            continue;
        }
        long n = read_hex_line();
        if (n < 0) {
            fprintf(stderr, "frame_driver: bad argument to command %c\n", cmd);
            return 2;
        }
        switch (cmd) {
        case 'C':
            printf("C %u\n", (unsigned)bb_crc16(arg, (size_t)n));
            break;
        case 'E': {
            size_t w = bb_frame_encode(arg, (size_t)n, wire, sizeof(wire));
            fputs("E ", stdout);
            if (w == 0) {
                putchar('!');
            } else {
                put_hex(wire, w);
            }
            putchar('\n');
            break;
        }
        case 'D':
            bb_frame_decoder_feed(&dec, arg, (size_t)n, on_payload, NULL);
            break;
        case 'S':
            printf("S %lu %lu %lu %lu\n", (unsigned long)dec.frames_rx, (unsigned long)dec.crc_errors,
                   (unsigned long)dec.garbage_bytes, (unsigned long)dec.oversize);
            break;
        default:
            fprintf(stderr, "frame_driver: unknown command %c\n", cmd);
            return 2;
        }
    }
    return 0;
}
