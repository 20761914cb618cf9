/* A test port: records every bb_port_* call, returns configurable results, captures the
 * transport output and lets tests move time. */
#ifndef FAKE_PORT_H
#define FAKE_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "bb_port.h"

#define FP_MAX_CALLS 512
#define FP_OUT_BYTES (1u << 21)

typedef struct {
    const char *name;      /* bb_port_ function name without the prefix, e.g. "gap_disconnect" */
    uint32_t a[4];         /* integer arguments in order */
    uint16_t len;          /* data argument length; data copied below when it fits */
    uint8_t data[64];
    bool data_null;
} fp_call_t;

typedef struct {
    fp_call_t calls[FP_MAX_CALLS];
    unsigned ncalls;
    const char *fail_name; /* this call returns fail_rc */
    int fail_rc;
    int l2cap_send_rc;
    uint8_t out[FP_OUT_BYTES];
    size_t out_len;
    size_t write_limit;    /* bytes taken per transport write, 0: all */
    unsigned write_stall;  /* transport writes that take nothing before it takes again */
    uint32_t now_ms;
    int critical_depth;
    bool critical_nested;  /* the core nested critical sections */
    bb_port_caps_t caps;
    bb_config_t last_config;
    bb_addr_t addr;
    unsigned answers;
    bb_question_kind_t answer_kind;
    uint32_t answer_ref;
    bb_answer_t answer;
    uint8_t answer_data[256];
    void (*inside)(const char *name); /* called inside every recorded bb_port_* call */
} fake_port_t;

extern fake_port_t fp;

void fp_reset(void);
const fp_call_t *fp_find(const char *name); /* last call of that name, NULL if none */
unsigned fp_count(const char *name);

#endif /* FAKE_PORT_H */
