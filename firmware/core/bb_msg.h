/*
 * CBOR message layer over zcbor: parsing a request `[0, id, method, args...]` into typed
 * arguments, checking them against the generated method table (bb_methods[]), and encoding
 * responses and events. zcbor's state struct is passed first everywhere; every write is bounds
 * checked by zcbor against the buffer the state was created on.
 */
#ifndef BB_MSG_H
#define BB_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bb_config.h"
#include "zcbor_decode.h"
#include "zcbor_encode.h"

/* CBOR shape of one received argument, as found on the wire. */
typedef enum {
    BB_ARG_ABSENT = 0,  /* trailing optional argument left out: reads as null */
    BB_ARG_UINT,        /* major 0; v.u */
    BB_ARG_NINT,        /* major 1; v.i (negative, fits int64) */
    BB_ARG_BOOL,        /* v.b */
    BB_ARG_NIL,
    BB_ARG_BYTES,       /* ptr/len: content */
    BB_ARG_TEXT,        /* ptr/len: content, not NUL-terminated */
    BB_ARG_OTHER,       /* array, map, tag, float, undefined, or an integer beyond 64 bits */
} bb_arg_kind_t;

typedef struct {
    uint8_t kind;                 /* bb_arg_kind_t */
    union {
        uint64_t u;
        int64_t i;
        bool b;
    } v;
    const uint8_t *ptr;           /* string content */
    size_t len;
    const uint8_t *raw;           /* the whole encoded item, for `any` arguments */
    size_t raw_len;
} bb_arg_t;

typedef struct {
    uint32_t id;
    uint32_t method;
    uint8_t argc;
    bb_arg_t args[BB_MAX_ARGS];
} bb_request_t;

/* Zero-extra-cost views of validated arguments (valid after bb_request_validate() is OK). */
static inline bool bb_arg_is_nil(const bb_request_t *r, unsigned i)
{
    return i >= r->argc || r->args[i].kind == BB_ARG_NIL || r->args[i].kind == BB_ARG_ABSENT;
}
static inline uint32_t bb_arg_u32(const bb_request_t *r, unsigned i)
{
    return (uint32_t)r->args[i].v.u;
}
static inline int32_t bb_arg_i32(const bb_request_t *r, unsigned i)
{
    return r->args[i].kind == BB_ARG_NINT ? (int32_t)r->args[i].v.i : (int32_t)r->args[i].v.u;
}
static inline bool bb_arg_bool(const bb_request_t *r, unsigned i)
{
    return r->args[i].v.b;
}

/* Parse one frame payload as a request. Returns BB_STATUS_OK, or BB_STATUS_MALFORMED with
 * *id_known telling whether r->id was read (the response then carries it, else null), or
 * BB_STATUS_BAD_ARG_COUNT when there are more than BB_MAX_ARGS arguments. */
int bb_request_parse(const uint8_t *payload, size_t len, bb_request_t *r, bool *id_known);

/* Check the arguments against the method's schema entry. Returns BB_STATUS_OK,
 * UNKNOWN_METHOD, BAD_ARG_COUNT, BAD_ARG_TYPE or VALUE_TOO_LARGE. */
int bb_request_validate(const bb_request_t *r);

/* Skip one data item whose arrays/maps nest at most `depth_left` deep (zcbor_any_skip recurses
 * without bound, which a small stack cannot afford on hostile input). */
bool bb_cbor_skip(zcbor_state_t *st, unsigned depth_left);

/* Write a CBOR head (major type, argument) at out; returns its length (1..5), 0 if cap is short. */
size_t bb_cbor_head(uint8_t *out, size_t cap, uint8_t major, uint32_t value);

/* Decoding states for nested `any` values: enough backups for BB_CBOR_MAX_DEPTH levels. */
#define BB_CBOR_STATES (BB_CBOR_MAX_DEPTH + 3)

/* Start decoding an `any` argument's raw bytes. Unlike zcbor's default with ZCBOR_CANONICAL,
 * non-canonical input (longer integer encodings, indefinite lengths) is accepted. */
void bb_cbor_decode_init(zcbor_state_t *states, size_t n, const uint8_t *raw, size_t len);

#endif /* BB_MSG_H */
