/*
 * Input layout shared by the request and sim-air harnesses (and by make_seeds.py, which writes
 * seeds in it): one flags byte, then records `len_lo len_hi payload[len]`. A record longer than
 * what is left takes what is left. Each payload is framed with bb_frame_encode by the harness,
 * so the fuzzer spends its time on messages rather than on finding CRCs.
 */
#ifndef FUZZ_RECORDS_H
#define FUZZ_RECORDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;
    size_t left;
} fuzz_records_t;

/* Next record: true with payload and len set, false at the end of the input. */
static inline int fuzz_record_next(fuzz_records_t *r, const uint8_t **payload, size_t *len)
{
    if (r->left < 2) {
        return 0;
    }
    size_t n = (size_t)r->p[0] | ((size_t)r->p[1] << 8);
    r->p += 2;
    r->left -= 2;
    if (n > r->left) {
        n = r->left;
    }
    *payload = r->p;
    *len = n;
    r->p += n;
    r->left -= n;
    return 1;
}

#endif /* FUZZ_RECORDS_H */
