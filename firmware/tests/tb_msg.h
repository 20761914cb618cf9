/* Test helpers: build requests, feed them to the core, and read back what the core sent. */
#ifndef TB_MSG_H
#define TB_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zcbor_decode.h"

/* Request argument formats for tb_req: u uint32, i int32, b bool, n null, y bytes (ptr, len),
 * s text (NUL-terminated), r raw CBOR item (ptr, len). */
size_t tb_cbor_req(uint8_t *out, size_t cap, uint32_t id, uint32_t method, const char *fmt, ...);
/* Frame a CBOR payload and hand it to bb_core_rx in one chunk. */
void tb_rx_payload(const uint8_t *cbor, size_t len);
void tb_req(uint32_t id, uint32_t method, const char *fmt, ...);

typedef struct {
    bool id_null;
    uint32_t id;
    uint32_t status;
    const uint8_t *result;
    size_t result_len;
    unsigned frame;         /* index of the frame that carried it */
} tb_rsp_t;

typedef struct {
    uint32_t code;
    unsigned nfields;
    const uint8_t *fields;  /* the encoded fields after the code */
    size_t fields_len;
    unsigned frame;         /* index of the frame that carried it */
} tb_evt_t;

#define TB_MAX_RSP 512
#define TB_MAX_EVT 4096

typedef struct {
    tb_rsp_t rsp[TB_MAX_RSP];
    unsigned nrsp;
    tb_evt_t evt[TB_MAX_EVT];
    unsigned nevt;
    unsigned frames;
    unsigned batches;       /* EVT_BATCH frames */
    unsigned other;         /* frames that were neither */
    unsigned evt_frames;    /* EVT and EVT_BATCH frames */
    uint32_t next_seq;      /* seq the next event frame should carry (0 after tb_boot) */
    unsigned seq_errors;    /* event frames whose seq was not next_seq */
} tb_out_t;

extern tb_out_t tb_out;

/* Reset the fake port, init the core and forget its BOOT event. */
void tb_boot(void);
/* Poll the core until it has nothing more to send, then parse every new frame. */
void tb_drain(void);
const tb_rsp_t *tb_rsp(uint32_t id);     /* last response with this id */
const tb_evt_t *tb_evt(uint32_t code);   /* first event with this code */
unsigned tb_evt_count(uint32_t code);

/* Field i of an event, or a result: decode helpers (false if absent or another type). */
bool tb_field(const tb_evt_t *e, unsigned i, zcbor_state_t *st, size_t nst);
uint32_t tb_field_u32(const tb_evt_t *e, unsigned i);
int32_t tb_field_i32(const tb_evt_t *e, unsigned i);
size_t tb_field_bytes(const tb_evt_t *e, unsigned i, const uint8_t **p);
bool tb_result_u32(const tb_rsp_t *r, uint32_t *v);
bool tb_result_bool(const tb_rsp_t *r, bool *v);
size_t tb_result_bytes(const tb_rsp_t *r, const uint8_t **p);
bool tb_result_is_nil(const tb_rsp_t *r);

/* Activate the radio and drain. */
void tb_activate(void);

#endif /* TB_MSG_H */
