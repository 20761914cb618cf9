/*
 * nrf_sd port internals: state shared by the port's files (nrf_sd_*.c) and the Arduino glue.
 *
 * Execution model: the SoftDevice is enabled once in bb_port_init() and its events are pulled
 * with sd_ble_evt_get() from the Arduino loop() (bb_nrf_sd_poll), the same context that runs
 * bb_core_poll() and every bb_port_* call. The port's tables therefore have one writer and need
 * no locks; bb_port_critical_enter/exit still guard the core's queue as bb_port.h requires.
 *
 * Flow control: when a bb_on_* callback returns -ENOMEM the event is kept ("held") and handed
 * to its handler again after the core has drained its queue; the SoftDevice meanwhile keeps its
 * own events queued and stops acknowledging peer data, so nothing is lost. Handlers are written
 * so a re-run is harmless: callbacks first, SoftDevice replies after them, and handlers with
 * several callbacks record their progress (bb_nrf_stage, or a batch index in the connection).
 */
#ifndef BB_NRF_SD_H
#define BB_NRF_SD_H

#include <stdbool.h>
#include <stdint.h>

#include "ble.h"
#include "ble_gap.h"
#include "ble_gattc.h"
#include "ble_gatts.h"
#include "ble_l2cap.h"

#include "bb_port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Connection configuration tag used for every sd_ble_gap_adv_start / sd_ble_gap_connect. */
#define BB_NRF_CONN_CFG_TAG 1

/* Largest ATT MTU the port asks the SoftDevice for; sd_ble_enable may settle lower. */
#define BB_NRF_ATT_MTU_MAX 247

/* L2CAP PDU payload (MPS) in bytes: one 251-byte LL PDU minus the 4-byte L2CAP header. */
#define BB_NRF_L2CAP_MPS 247

/* SoftDevice configuration that costs SoftDevice RAM, not application buffers (sd_ble_cfg_set). */
#define BB_NRF_VS_UUID_COUNT 10   /* 128-bit UUID bases the stack can tell apart */
#define BB_NRF_EVENT_LENGTH 6     /* radio time per link and interval, 1.25 ms units: 7.5 ms */
#define BB_NRF_HVN_QUEUE 4        /* notifications queued per link */
#define BB_NRF_WRCMD_QUEUE 4      /* write commands queued per link */

#if BB_NRF_SD_MAX_CONNECTIONS < 2
#error "BB_NRF_SD_MAX_CONNECTIONS must be at least 2: one peripheral and one central link"
#endif

/* Discovery results parked while 128-bit UUIDs unknown to the SoftDevice are read back from
 * their declarations (the SoftDevice reports them as BLE_UUID_TYPE_UNKNOWN). */
typedef struct {
    uint16_t h1;          /* service: start; characteristic: declaration; descriptor: handle */
    uint16_t h2;          /* service: end; characteristic: value handle */
    uint8_t props;        /* characteristic properties */
    bool resolved;        /* uuid is valid */
    bb_uuid_t uuid;
} bb_nrf_disc_item_t;

typedef enum {
    BB_NRF_GATTC_IDLE = 0,
    BB_NRF_GATTC_SERVICES,
    BB_NRF_GATTC_CHARACTERISTICS,
    BB_NRF_GATTC_DESCRIPTORS,
    BB_NRF_GATTC_READ,
    BB_NRF_GATTC_WRITE,
    BB_NRF_GATTC_WRITE_LONG,
    BB_NRF_GATTC_CANCELLING,  /* a failed long write's Execute Write (cancel) awaits its response */
} bb_nrf_gattc_op_t;

typedef struct {
    bool used;
    uint16_t handle;          /* SoftDevice connection handle */
    uint8_t role;             /* BLE_GAP_ROLE_PERIPH: a central connected to us */
    bb_addr_t peer;
    uint16_t att_mtu;         /* effective ATT MTU (23 until exchanged) */
    uint16_t mtu_ours;        /* our RX MTU given in this link's first exchange (either
                                 direction), 0: none yet; the SoftDevice requires the same
                                 value in both directions */

    /* GATT server */
    uint16_t indicate_handle; /* value handle of the indication awaiting confirmation, 0: none */
    uint8_t hvn_inflight;     /* notifications queued in the SoftDevice (HVN_TX_COMPLETE frees) */
    /* A read-authorisation reply the SoftDevice refused with NRF_ERROR_BUSY ("process pending
     * events and retry", ble_gatts.h), retried after events by bb_nrf_gatts_retry_replies:
     * an unanswered read holds the peer's ATT bearer until its 30 s timeout ends the link. */
    bool rd_reply_pending;
    uint16_t rd_reply_handle;
    uint8_t rd_reply_att;     /* ATT error to answer, 0: the value */

    /* GATT client: one procedure at a time, as the SoftDevice allows per connection */
    uint8_t gattc_op;         /* bb_nrf_gattc_op_t */
    uint16_t gattc_handle;    /* read/write value handle */
    uint16_t gattc_end;       /* discovery range end (inclusive) */
    uint16_t gattc_next;      /* next discovery start, 0: range exhausted */
    bool gattc_has_filter;
    bb_uuid_t gattc_filter;
    uint8_t disc_count, disc_idx;
    bb_nrf_disc_item_t disc[BB_NRF_SD_DISC_BATCH];
    uint8_t wrcmd_inflight;   /* write commands queued (WRITE_CMD_TX_COMPLETE frees) */

    /* Security. The key set must stay valid from sd_ble_gap_sec_params_reply to AUTH_STATUS. */
    bool pairing;             /* a pairing procedure is running: set on SEC_PARAMS_REQUEST,
                                 ended by AUTH_STATUS */
    bool passkey_shown;       /* PASSKEY_DISPLAY gave shown_passkey for this pairing */
    uint32_t shown_passkey;   /* the passkey the SoftDevice chose and displays (0-999999) */
    bool bonded;
    bool lesc;
    ble_gap_conn_sec_mode_t sec_mode;
    uint8_t key_size;
    ble_gap_enc_key_t own_enc, peer_enc;
    ble_gap_id_key_t own_id, peer_id;
    ble_gap_lesc_p256_pk_t peer_pk;
} bb_nrf_conn_t;

/* One attribute the port added: a characteristic value or a descriptor. */
typedef struct {
    uint16_t handle;
    uint16_t cccd_handle;     /* characteristic with NOTIFY/INDICATE: its CCCD, else 0 */
    uint32_t flags;           /* BB_FLAG_* */
    bool chr;                 /* characteristic value (false: descriptor) */
} bb_nrf_attr_t;

/* nrf_sd_port.c ------------------------------------------------------------------------------ */
extern bb_nrf_conn_t bb_nrf_conns[BB_NRF_SD_MAX_CONNECTIONS];
extern bb_config_t bb_nrf_cfg;          /* last config_apply */
extern uint16_t bb_nrf_att_mtu_max;     /* ATT MTU granted by sd_ble_enable */
extern uint8_t bb_nrf_stage;            /* callbacks already made for the held event */
extern bool bb_nrf_active;              /* ble_active(true) and the stack is enabled */

int bb_nrf_err(uint32_t nrf_err);       /* NRF_ERROR_* / BLE_ERROR_* -> 0 or -errno */
uint8_t bb_nrf_att_status(uint16_t gatt_status); /* BLE_GATT_STATUS_* -> ATT error code, 0 ok */
/* Our RX MTU for this link: what its first exchange used, else the configured one. */
uint16_t bb_nrf_mtu_ours(bb_nrf_conn_t *c);
/* ATT bearer timed out (GATT client or server): the link cannot run ATT again, end it. */
void bb_nrf_att_timeout(uint16_t conn);
bb_nrf_conn_t *bb_nrf_conn(uint16_t handle);
void bb_nrf_addr_from_sd(bb_addr_t *out, const ble_gap_addr_t *in);
void bb_nrf_addr_to_sd(ble_gap_addr_t *out, const bb_addr_t *in);
/* UUID conversions. to_sd registers 128-bit bases with sd_ble_uuid_vs_add. from_sd returns
 * false for BLE_UUID_TYPE_UNKNOWN (the caller reads the declaration). */
int bb_nrf_uuid_to_sd(ble_uuid_t *out, const bb_uuid_t *in);
bool bb_nrf_uuid_from_sd(bb_uuid_t *out, const ble_uuid_t *in);
bool bb_nrf_uuid_equal(const bb_uuid_t *a, const bb_uuid_t *b);
void bb_nrf_uuid_from_le128(bb_uuid_t *out, const uint8_t le[16]);
/* Called from the Arduino loop(): pull and handle SoftDevice BLE and SoC events. */
void bb_nrf_sd_poll(void);
/* Let the other tasks run for about a millisecond (nrf_sd_main.cpp: Arduino delay). */
void bb_nrf_sd_sleep_1ms(void);
/* Which per-link SoftDevice TX queue bb_nrf_tx_wait waits on. */
typedef enum { BB_NRF_TXQ_HVN, BB_NRF_TXQ_WRCMD } bb_nrf_txq_t;
/* Wait, pulling SoftDevice events (bb_nrf_sd_poll), until link `conn` has a free slot in queue
 * `q` (its *_inflight below the configured queue size) or BB_NRF_SD_TX_WAIT_MS passed.
 * true: a slot is free; false: timed out, the link is gone, or called from inside a wait. */
bool bb_nrf_tx_wait(uint16_t conn, bb_nrf_txq_t q);
/* USB power events reach TinyUSB through the SoftDevice's SoC events once it owns POWER. */
void bb_nrf_usb_power_event(uint32_t nrfx_power_usb_evt);

/* Per-area handlers: each returns 0, or -ENOMEM to hold the event and retry. */
int bb_nrf_gap_on_event(const ble_evt_t *evt);
int bb_nrf_gatts_on_event(const ble_evt_t *evt);
int bb_nrf_gattc_on_event(const ble_evt_t *evt);
int bb_nrf_l2cap_on_event(const ble_evt_t *evt);
int bb_nrf_sec_on_event(const ble_evt_t *evt);

/* Area state reset when the stack is (re)started or a connection ends. */
void bb_nrf_gap_reset(void);
void bb_nrf_gatts_reset(void);
void bb_nrf_l2cap_reset(void);
int bb_nrf_l2cap_conn_closed(uint16_t conn);  /* reports its open channels closed */
void bb_nrf_gattc_conn_closed(bb_nrf_conn_t *c);
void bb_nrf_gatts_conn_closed(uint16_t conn);   /* releases its long-write queue */

/* nrf_sd_gap.c */
bool bb_nrf_gap_busy(void);             /* advertising, scanning or connecting */
/* nrf_sd_gatts.c */
bool bb_nrf_gatts_registered(void);
/* Retry read-authorisation replies the SoftDevice refused as busy (after events). */
void bb_nrf_gatts_retry_replies(void);
/* nrf_sd_port.c: restart the SoftDevice (drops links and the GATT table). 0 or -errno. */
int bb_nrf_stack_restart(void);

/* nrf_sd_sec.c */
void bb_nrf_sec_params(ble_gap_sec_params_t *out);
bool bb_nrf_lesc_available(void);
int bb_nrf_sec_init(void);              /* after bb_nrf_lesc_init: takes our LESC public key */

/* Answers to questions, routed by bb_port_answer (nrf_sd_sec.c). */
void bb_nrf_gatts_answer_read(uint32_t port_ref, const bb_answer_t *answer);
void bb_nrf_l2cap_answer(uint32_t port_ref, const bb_answer_t *answer);

/* nrf_sd_lesc.c: P-256 on the nRF52840 CryptoCell CC310. Keys little-endian as SMP carries
 * them (X then Y, 32 bytes each). 0, or -errno. */
int bb_nrf_lesc_init(void);
int bb_nrf_lesc_public_key(uint8_t out_le[64]);
int bb_nrf_lesc_dhkey(const uint8_t peer_pk_le[64], uint8_t out_dhkey_le[32]);

#ifdef __cplusplus
}
#endif

#endif /* BB_NRF_SD_H */
