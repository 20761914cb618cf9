/*
 * blebridge port boundary: the one header between the portable core and a vendor BLE stack.
 *
 * Section 1 ("implemented by ports") is what every port (sim, nrf_sd, nimble, null) provides.
 * Section 2 ("called by ports") is what the core offers ports: byte input from the transport,
 * the main-loop tick, and one callback per event.
 *
 * Rules for ports:
 *  - Every bb_port_* function returns 0 or a negative errno numbered as on the wire
 *    (-BB_STATUS_EINVAL, -BB_STATUS_ENOTCONN, ...: Linux/MicroPython numbers). Never use the C
 *    library's E* macros: newlib numbers several differently (ENOTCONN is 128 there). Vendor
 *    status codes are translated through a table in the port, never returned raw.
 *  - bb_port_* functions are called from the core's main loop only.
 *  - bb_on_* callbacks may be called from stack context (SoftDevice event handler, NimBLE host
 *    task): they copy what they need into the core's event queue under bb_port_critical_enter/
 *    exit and return at once. Pointers passed in are not kept after the call returns.
 *  - Times are in the unit their name says (_ms, _us). Handles are the stack's own.
 *
 * Modelled on MicroPython's extmod/modbluetooth.h split between modbluetooth.c and its bindings.
 */
#ifndef BB_PORT_H
#define BB_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bb_config.h"

/* ----------------------------------------------------------------------------------------- */
/* Shared value types                                                                          */
/* ----------------------------------------------------------------------------------------- */

#define BB_ADDR_LEN 6
#define BB_CONN_NONE 0xFFFFu

typedef struct {
    uint8_t len;       /* 2, 4 or 16 */
    uint8_t bytes[16]; /* little-endian, as on air */
} bb_uuid_t;

typedef struct {
    uint8_t type;              /* BB_ADDR_TYPE_PUBLIC / _RANDOM */
    uint8_t addr[BB_ADDR_LEN]; /* little-endian (LSB first) */
} bb_addr_t;

/* Settings the core keeps and hands to the port whole on every change (config_set). */
typedef struct {
    uint8_t addr_mode;      /* BB_ADDR_MODE_* */
    char gap_name[BB_MAX_NAME + 1];
    uint16_t appearance;
    uint16_t mtu;           /* preferred ATT MTU, 23..BB_MAX_ATTR_LEN+3 */
    bool bond;
    bool mitm;
    uint8_t io;             /* BB_IO_* */
    bool le_secure;
    int8_t tx_power;        /* dBm */
    bool read_request;      /* ask the host (GATTS_READ_REQUEST) before every peer read, not only
                               for attributes flagged BB_FLAG_READ_AUTHORIZED */
} bb_config_t;

typedef struct {
    uint32_t interval_us;
    const uint8_t *adv_data;  uint16_t adv_len;
    const uint8_t *resp_data; uint16_t resp_len;
    bool connectable;
    bool scannable;
    bool extended;
    uint32_t timeout_ms;      /* 0: until stopped */
    bool has_tx_power;   int8_t tx_power;   /* dBm */
    bool directed;       bb_addr_t peer;    /* valid when directed */
} bb_adv_params_t;

typedef struct {
    uint32_t duration_ms;     /* 0: until stopped */
    uint32_t interval_us;
    uint32_t window_us;
    bool active;
    bool filter_duplicates;
    /* RSSI and prefix filters are applied by the core; ports report everything. */
} bb_scan_params_t;

typedef struct {
    uint32_t min_interval_us;   /* 0: stack default */
    uint32_t max_interval_us;   /* 0: stack default */
    uint16_t latency;
    uint32_t supervision_timeout_ms; /* 0: stack default */
} bb_conn_params_t;

typedef struct {
    bb_addr_t peer;
    uint32_t scan_duration_ms;
    bb_conn_params_t conn;
} bb_connect_params_t;

/* Local GATT database handed to the port in one piece (NimBLE needs the whole table at once;
 * SoftDevice and Bumble take it service by service). Values live in the core's attribute pool:
 * ports that can read attribute values from application memory (SoftDevice BLE_GATTS_VLOC_USER,
 * NimBLE access callbacks) point at it; bb_core_gatts_value() gives the current bytes. */
typedef struct {
    bb_uuid_t uuid;
    uint32_t flags;           /* BB_FLAG_* */
    uint16_t max_len;
    const uint8_t *init; uint16_t init_len; /* valid during bb_port_gatts_register() only */
    uint16_t handle;          /* out: filled by the port */
} bb_gatts_dsc_t;

typedef struct {
    bb_uuid_t uuid;
    uint32_t flags;
    uint16_t max_len;
    const uint8_t *init; uint16_t init_len;
    uint8_t dsc_count;
    bb_gatts_dsc_t *dscs;
    uint16_t decl_handle;     /* out */
    uint16_t value_handle;    /* out */
    uint16_t cccd_handle;     /* out: 0 when the characteristic has neither NOTIFY nor INDICATE */
} bb_gatts_chr_t;

typedef struct {
    bb_uuid_t uuid;
    bool secondary;           /* a secondary service (reached by includes, not primary discovery) */
    uint8_t chr_count;
    bb_gatts_chr_t *chrs;
    uint16_t handle;          /* out */
} bb_gatts_svc_t;

/* Answers to board->host questions, passed back to the port that asked. */
typedef enum {
    BB_QUESTION_READ = 1,     /* answer.u: ATT error code, 0 allows the read */
    BB_QUESTION_L2CAP_ACCEPT, /* answer.u: 0 accepts, else an L2CAP result code */
    BB_QUESTION_GET_SECRET,   /* answer.data/len: the secret, found false: not known */
    BB_QUESTION_SET_SECRET,   /* answer.found: stored */
} bb_question_kind_t;

typedef struct {
    bool timed_out;           /* the safe default below was chosen by the core */
    bool found;
    uint32_t u;
    const uint8_t *data; uint16_t len;
} bb_answer_t;

/* Capabilities the port declares in the handshake; honest per board. */
typedef struct {
    const char *board;        /* "sim", "feather_nrf52840", "nrf52840_dongle", "esp32", ... */
    const char *port;         /* "sim", "nrf_sd", "nimble", "null" */
    bool central, peripheral, observer, broadcaster;
    bool l2cap, pairing, ext_adv;
    uint8_t max_connections;
    uint16_t max_mtu;
    uint16_t max_l2cap_mtu;
    /* The port keeps an event that bb_on_* refused with -BB_STATUS_ENOMEM and delivers it again
     * later (flow control): the core then counts a stall, not a drop. A port that cannot (the
     * event is gone once refused) leaves this false, and the core counts and reports a drop. */
    bool holds_back_events;
} bb_port_caps_t;

/* ========================================================================================= */
/* 1. Implemented by ports                                                                   */
/* ========================================================================================= */

/* Platform ------------------------------------------------------------------------------- */
int bb_port_init(void);                        /* once at boot, before bb_core_init() */
const bb_port_caps_t *bb_port_caps(void);
uint32_t bb_port_millis(void);                 /* monotonic ms since boot */
uint32_t bb_port_boot_id(void);                /* differs on every boot (random or counter) */
void bb_port_critical_enter(void);             /* protects the event queue from stack context */
void bb_port_critical_exit(void);
/* Write encoded frame bytes to the host link. Returns bytes taken (may be fewer: the core keeps
 * the rest and retries on the next bb_core_poll), or a negative errno. */
int bb_port_transport_write(const uint8_t *buf, size_t len);

/* Radio and configuration ------------------------------------------------------------------ */
int bb_port_ble_activate(bool on);             /* also clears connections, scans, adverts on off */
int bb_port_reset(void);                       /* as after boot; bonds kept */
int bb_port_config_apply(const bb_config_t *cfg);
int bb_port_addr_get(bb_addr_t *out);          /* also while inactive, if the stack can tell */
int bb_port_addr_set_static(const uint8_t addr[BB_ADDR_LEN]);

/* GAP -------------------------------------------------------------------------------------- */
int bb_port_gap_advertise_start(const bb_adv_params_t *p);
int bb_port_gap_advertise_stop(void);
int bb_port_gap_scan_start(const bb_scan_params_t *p);
int bb_port_gap_scan_stop(void);
int bb_port_gap_connect(const bb_connect_params_t *p);
int bb_port_gap_connect_cancel(void);
int bb_port_gap_disconnect(uint16_t conn);
int bb_port_gap_conn_update(uint16_t conn, const bb_conn_params_t *p);

/* GATT server ------------------------------------------------------------------------------ */
int bb_port_gatts_register(bb_gatts_svc_t *svcs, uint8_t svc_count);
/* The core's copy of a value changed by the host (gatts_write / set_buffer). The value's address
 * may have moved (the pool grows a buffer by reallocating it): fetch it again with
 * bb_core_gatts_value(), never keep a pointer across calls. */
int bb_port_gatts_value_changed(uint16_t value_handle);
/* data NULL: send the core's current value. conn BB_CONN_NONE: send the current value to every
 * subscribed peer, as a notification or an indication per the CCCD each peer wrote (used by
 * gatts_write with send_update). */
int bb_port_gatts_notify(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len);
int bb_port_gatts_indicate(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len);

/* GATT client ------------------------------------------------------------------------------ */
int bb_port_gattc_discover_services(uint16_t conn, const bb_uuid_t *uuid /* NULL: all */);
int bb_port_gattc_discover_characteristics(uint16_t conn, uint16_t start, uint16_t end,
                                           const bb_uuid_t *uuid);
int bb_port_gattc_discover_descriptors(uint16_t conn, uint16_t start, uint16_t end,
                                       const bb_uuid_t *uuid);
int bb_port_gattc_read(uint16_t conn, uint16_t value_handle); /* long values read in full */
int bb_port_gattc_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len,
                        bool with_response);
int bb_port_gattc_exchange_mtu(uint16_t conn);

/* L2CAP connection-oriented channels -------------------------------------------------------- */
int bb_port_l2cap_listen(uint16_t psm, uint16_t mtu);
int bb_port_l2cap_connect(uint16_t conn, uint16_t psm, uint16_t mtu);
/* Returns 0 when taken, 1 when taken but the channel is now stalled (L2CAP_SEND_READY will
 * follow), -BB_STATUS_EAGAIN when not taken because it is stalled, or another negative errno. */
int bb_port_l2cap_send(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len);
int bb_port_l2cap_disconnect(uint16_t conn, uint16_t cid);

/* Security --------------------------------------------------------------------------------- */
int bb_port_gap_pair(uint16_t conn);
int bb_port_gap_passkey(uint16_t conn, uint8_t action, uint32_t passkey);
int bb_port_sec_erase_bonds(void);
int bb_port_sec_state(uint16_t conn, bool *encrypted, bool *authenticated, bool *bonded,
                      uint8_t *key_size);

/* Questions: the core calls this once per question the port raised, with the host's answer or,
 * after BB_QUESTION_TIMEOUT_MS, the safe default (timed_out set). port_ref is the port's own
 * reference given to bb_on_question(). */
void bb_port_answer(bb_question_kind_t kind, uint32_t port_ref, const bb_answer_t *answer);

/* ========================================================================================= */
/* 2. Called by ports                                                                        */
/* ========================================================================================= */

/* Main loop ---------------------------------------------------------------------------------- */
void bb_core_init(void);
void bb_core_rx(const uint8_t *data, size_t len);  /* bytes from the host link, any chunking */
void bb_core_poll(void);                           /* drain events, send, expire questions */
bool bb_core_tx_pending(void);                     /* more to send: call bb_core_poll again */
/* The settings after boot (the core applies them with bb_port_config_apply in bb_core_init). */
void bb_config_defaults(bb_config_t *cfg);
/* Current value bytes of a local attribute (core's attribute pool), NULL if unknown. */
const uint8_t *bb_core_gatts_value(uint16_t value_handle, uint16_t *len, uint16_t *max_len);

/* Events. Each returns 0; -BB_STATUS_ENOMEM when the event queue has no room now (a port with
 * caps.holds_back_events delivers it again later; otherwise it is counted and reported as
 * dropped); or -BB_STATUS_E2BIG when the event can never fit (dropped, counted, reported). */
int bb_on_central_connect(uint16_t conn, const bb_addr_t *peer);
int bb_on_central_disconnect(uint16_t conn, const bb_addr_t *peer, uint8_t reason);
int bb_on_peripheral_connect(uint16_t conn, const bb_addr_t *peer);
/* conn BB_CONN_NONE: a gap_connect that timed out or was cancelled. */
int bb_on_peripheral_disconnect(uint16_t conn, const bb_addr_t *peer, uint8_t reason);
int bb_on_advertise_done(uint8_t reason);
int bb_on_scan_result(const bb_addr_t *addr, uint8_t adv_type, int8_t rssi,
                      const uint8_t *data, uint16_t len);
int bb_on_scan_done(void);
int bb_on_connection_update(uint16_t conn, uint16_t interval_1250us, uint16_t latency,
                            uint16_t supervision_timeout_10ms, uint8_t status);
/* A peer wrote a local attribute: the core stores it (truncated to the buffer, or appended in
 * append mode) before reporting GATTS_WRITE. */
int bb_on_gatts_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len,
                      uint16_t offset);
int bb_on_gatts_indicate_done(uint16_t conn, uint16_t value_handle, uint8_t status);
int bb_on_mtu_exchanged(uint16_t conn, uint16_t mtu);
int bb_on_gattc_service_result(uint16_t conn, uint16_t start, uint16_t end, const bb_uuid_t *uuid);
int bb_on_gattc_service_done(uint16_t conn, uint16_t status);
int bb_on_gattc_characteristic_result(uint16_t conn, uint16_t def_handle, uint16_t value_handle,
                                      uint8_t properties, const bb_uuid_t *uuid);
int bb_on_gattc_characteristic_done(uint16_t conn, uint16_t status);
int bb_on_gattc_descriptor_result(uint16_t conn, uint16_t handle, const bb_uuid_t *uuid);
int bb_on_gattc_descriptor_done(uint16_t conn, uint16_t status);
int bb_on_gattc_read_result(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len);
int bb_on_gattc_read_done(uint16_t conn, uint16_t value_handle, uint16_t status);
int bb_on_gattc_write_done(uint16_t conn, uint16_t value_handle, uint16_t status);
int bb_on_gattc_notify(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len);
int bb_on_gattc_indicate(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len);
int bb_on_l2cap_connect(uint16_t conn, uint16_t cid, uint16_t psm, uint16_t our_mtu,
                        uint16_t peer_mtu);
int bb_on_l2cap_disconnect(uint16_t conn, uint16_t cid, uint16_t psm, uint16_t status);
int bb_on_l2cap_recv(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len);
int bb_on_l2cap_send_ready(uint16_t conn, uint16_t cid, uint16_t status);
int bb_on_encryption_update(uint16_t conn, bool encrypted, bool authenticated, bool bonded,
                            uint8_t key_size);
int bb_on_passkey_action(uint16_t conn, uint8_t action, uint32_t passkey);

/* Questions to the host. The core sends the matching event with a fresh token and later calls
 * bb_port_answer(kind, port_ref, ...) exactly once. Returns 0, or -ENOMEM when
 * BB_MAX_QUESTIONS are already open (-BB_STATUS_ENOMEM; the port then applies the safe default itself). */
int bb_on_question_read(uint32_t port_ref, uint16_t conn, uint16_t value_handle);
int bb_on_question_l2cap_accept(uint32_t port_ref, uint16_t conn, uint16_t cid, uint16_t psm,
                                uint16_t our_mtu, uint16_t peer_mtu);
int bb_on_question_get_secret(uint32_t port_ref, uint8_t sec_type, uint8_t index,
                              const uint8_t *key, uint16_t key_len /* key NULL: by index */);
int bb_on_question_set_secret(uint32_t port_ref, uint8_t sec_type, const uint8_t *key,
                              uint16_t key_len, const uint8_t *value, uint16_t value_len
                              /* value NULL: delete */);

/* Log a line to the host (LOG event, droppable). */
int bb_log(uint8_t level, const char *text);

#endif /* BB_PORT_H */
