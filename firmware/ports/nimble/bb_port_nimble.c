/*
 * Port `nimble`: the bb_port.h surface on the NimBLE host API (ESP-IDF's NimBLE on ESP32 and
 * ESP32-S3). This file uses NimBLE and its NPL only; everything ESP-IDF-specific (tasks, the host
 * link, controller start/stop) is in bb_esp32_main.c behind bb_nimble_glue.h, so this file can
 * be syntax-checked against apache/mynewt-nimble and espressif/esp-nimble (port.mk).
 *
 * Threads. bb_port_* run in the core task; NimBLE callbacks run in the NimBLE host task and hand
 * events to the core with bb_on_* (the core queues them under bb_port_critical_enter/exit).
 * NimBLE calls that may reach the bond store (ble_gap_security_initiate, ble_store_clear) are
 * deferred to the host task: from the core task the store could not ask the host (the question
 * goes out through the core task itself).
 *
 * Questions. NimBLE's GATT access, L2CAP accept and store callbacks are synchronous, so the host
 * task blocks on one semaphore (bb_nimble_answer_wait) until bb_port_answer() arrives from the
 * core task, or QUESTION_TIMEOUT_MS + BB_NIMBLE_ANSWER_GRACE_MS passes. Only the host task asks,
 * so at most one question of this port is open at a time.
 *
 * No deadlock between the two tasks. NimBLE calls the store callbacks with ble_hs_lock held
 * (ble_store_read/write/delete), so while a store question waits for the host, any NimBLE call
 * from the core task would block on ble_hs_lock and the answer (which only the core task can
 * deliver) would never come. Every bb_port_* that calls NimBLE therefore claims the API
 * (api_enter): the core task never waits for it (-EAGAIN while a store question is open), and
 * the host task waits for it at most BB_NIMBLE_STORE_CLAIM_MS before answering the store with
 * "not found" / "failed" itself. GATT access and L2CAP accept callbacks run without
 * ble_hs_lock, so READ and L2CAP_ACCEPT questions do not claim the API.
 *
 * Errors. NimBLE BLE_HS_* codes go through one table to negative BB_STATUS_* errno values (the
 * wire numbering, equal to Linux errno; newlib's ENOTCONN/ETIMEDOUT/EALREADY/EINPROGRESS differ,
 * so <errno.h> is not used). Status fields of events carry the ATT error code for ATT errors and
 * the positive errno otherwise; disconnect reasons are HCI reason codes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef ESP_PLATFORM
#include "sdkconfig.h" /* the controller's CONFIG_* limits (BB_NIMBLE_CTRL_MAX_CONN) */
#endif
#include "bb_config.h"
#include "bb_port.h"
#include "bb_proto.h"
#include "bb_nimble_glue.h"

#include "host/ble_hs.h"
#include "host/ble_uuid.h"
#include "nimble/nimble_port.h"
#include "services/gap/ble_svc_gap.h"
#include "services/gatt/ble_svc_gatt.h"

#ifndef BB_BOARD
#define BB_BOARD "esp32"
#endif

#define BB_ERR(name) (-(int)BB_STATUS_##name)
#define BB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BB_MIN(a, b) ((a) < (b) ? (a) : (b))

/* The core answers every question by QUESTION_TIMEOUT_MS; the grace covers its poll period. */
#define BB_NIMBLE_ANSWER_GRACE_MS 500u
/* How long a store callback (host task, ble_hs_lock held) waits for the core task to leave a
 * NimBLE call before answering "not found" itself. Core-task NimBLE calls take a few ms (HCI
 * command round trips, completed outside the host task). */
#define BB_NIMBLE_STORE_CLAIM_MS 200u
/* How long ble_active(True) waits for the host to sync with the controller. */
#define BB_NIMBLE_SYNC_TIMEOUT_MS 2000u
#define BB_NIMBLE_SYNC_POLL_MS 10u
/* Radio units: advertising/scan intervals in 0.625 ms, connection intervals in 1.25 ms,
 * supervision timeout in 10 ms, extended advertising and extended scan durations in 10 ms. */
#define BB_US_PER_ADV_UNIT 625u
#define BB_US_PER_CONN_UNIT 1250u
#define BB_MS_PER_TIMEOUT_UNIT 10u
/* Core spec limits (Vol 4 Part E 7.8.5, 7.8.10, 7.8.12): advertising interval 20 ms..10.24 s,
 * scan interval/window 2.5 ms..10.24 s (legacy) / 40.96 s (extended), connection interval
 * 7.5 ms..4 s, supervision timeout 100 ms..32 s. */
#define BB_ADV_ITVL_MIN 0x0020u
#define BB_ADV_ITVL_MAX 0x4000u
#define BB_EXT_ADV_ITVL_MAX 0xFFFFFFu
#define BB_SCAN_ITVL_MIN 0x0004u
#define BB_SCAN_ITVL_MAX 0x4000u
#define BB_EXT_SCAN_ITVL_MAX 0xFFFFu
#define BB_CONN_ITVL_MIN 0x0006u
#define BB_CONN_ITVL_MAX 0x0C80u
#define BB_SUPERVISION_MIN 0x000Au
#define BB_SUPERVISION_MAX 0x0C80u
#define BB_UUID_CCCD 0x2902u
#define BB_CCCD_NOTIFY 0x0001u
#define BB_CCCD_INDICATE 0x0002u

/* ========================================================================================= */
/* Errors                                                                                     */
/* ========================================================================================= */

/* BLE_HS_* -> BB_STATUS_* errno. Codes not listed become EIO. */
static const uint8_t s_hs_errno[] = {
    [BLE_HS_EAGAIN] = BB_STATUS_EAGAIN,
    [BLE_HS_EALREADY] = BB_STATUS_EALREADY,
    [BLE_HS_EINVAL] = BB_STATUS_EINVAL,
    [BLE_HS_EMSGSIZE] = BB_STATUS_E2BIG,
    [BLE_HS_ENOENT] = BB_STATUS_ENOENT,
    [BLE_HS_ENOMEM] = BB_STATUS_ENOMEM,
    [BLE_HS_ENOTCONN] = BB_STATUS_ENOTCONN,
    [BLE_HS_ENOTSUP] = BB_STATUS_EOPNOTSUPP,
    [BLE_HS_EBADDATA] = BB_STATUS_EINVAL,
    [BLE_HS_ETIMEOUT] = BB_STATUS_ETIMEDOUT,
    [BLE_HS_EDONE] = BB_STATUS_EALREADY,
    [BLE_HS_EBUSY] = BB_STATUS_EBUSY,
    [BLE_HS_EREJECT] = BB_STATUS_EPERM,
    [BLE_HS_EROLE] = BB_STATUS_EOPNOTSUPP,
    [BLE_HS_ETIMEOUT_HCI] = BB_STATUS_ETIMEDOUT,
    [BLE_HS_ENOMEM_EVT] = BB_STATUS_ENOMEM,
    [BLE_HS_ENOADDR] = BB_STATUS_EINVAL,
    [BLE_HS_ENOTSYNCED] = BB_STATUS_EAGAIN,
    [BLE_HS_EAUTHEN] = BB_STATUS_EPERM,
    [BLE_HS_EAUTHOR] = BB_STATUS_EPERM,
    [BLE_HS_EENCRYPT] = BB_STATUS_EPERM,
    [BLE_HS_EENCRYPT_KEY_SZ] = BB_STATUS_EPERM,
    [BLE_HS_ESTORE_CAP] = BB_STATUS_ENOMEM,
    [BLE_HS_ESTORE_FAIL] = BB_STATUS_EIO,
    [BLE_HS_EPREEMPTED] = BB_STATUS_EBUSY,
    [BLE_HS_EDISABLED] = BB_STATUS_EPERM,
    [BLE_HS_ESTALLED] = BB_STATUS_EAGAIN,
};

/* The controller's HCI status codes NimBLE returns as BLE_HS_ERR_HCI_BASE + code. */
static int hci_errno(int code)
{
    switch (code) {
    case BLE_ERR_UNK_CONN_ID:
        return BB_ERR(ENOTCONN);
    case BLE_ERR_MEM_CAPACITY:
    case BLE_ERR_CONN_LIMIT:
        return BB_ERR(ENOMEM);
    case BLE_ERR_CMD_DISALLOWED:
        return BB_ERR(EPERM);
    case BLE_ERR_INV_HCI_CMD_PARMS:
    case BLE_ERR_UNSUPP_LMP_LL_PARM:
        return BB_ERR(EINVAL);
    case BLE_ERR_UNSUPPORTED:
    case BLE_ERR_UNSUPP_REM_FEATURE:
        return BB_ERR(EOPNOTSUPP);
    case BLE_ERR_CONN_ACCEPT_TMO:
    case BLE_ERR_CONN_SPVN_TMO:
    case BLE_ERR_LMP_LL_RSP_TMO:
        return BB_ERR(ETIMEDOUT);
    default:
        return BB_ERR(EIO);
    }
}

static int hs_errno(int rc)
{
    if (rc == 0) {
        return 0;
    }
    if (rc > 0 && (size_t)rc < BB_ARRAY_LEN(s_hs_errno) && s_hs_errno[rc] != 0) {
        return -(int)s_hs_errno[rc];
    }
    if (rc > BLE_HS_ERR_HCI_BASE && rc < BLE_HS_ERR_L2C_BASE) {
        return hci_errno(rc - BLE_HS_ERR_HCI_BASE);
    }
    return BB_ERR(EIO);
}

/* Status field of a *_DONE event: 0, the ATT error code (1..0xFF), or the positive errno. */
static uint16_t hs_status(int rc)
{
    if (rc == 0 || rc == BLE_HS_EDONE) {
        return 0;
    }
    if (rc > BLE_HS_ERR_ATT_BASE && rc < BLE_HS_ERR_HCI_BASE) {
        return (uint16_t)(rc - BLE_HS_ERR_ATT_BASE);
    }
    return (uint16_t)(-hs_errno(rc));
}

/* HCI reason of a disconnect. NimBLE reports BLE_HS_ERR_HCI_BASE + the controller's reason; a
 * link the host itself dropped (host stop or reset: a BLE_HS_* code) reads as "terminated by the
 * local host", as the controller would say. */
static uint8_t hs_disconnect_reason(int rc)
{
    if (rc > BLE_HS_ERR_HCI_BASE && rc < BLE_HS_ERR_L2C_BASE) {
        return (uint8_t)(rc - BLE_HS_ERR_HCI_BASE);
    }
    return BLE_ERR_CONN_TERM_LOCAL;
}

/* Reason of PERIPHERAL_DISCONNECT with conn BB_CONN_NONE (gap_connect ended without a link):
 * the controller's status when it failed, else "unknown connection identifier" (what the
 * controller reports for a cancelled create-connection; NimBLE says BLE_HS_EAPP for a cancel,
 * BLE_HS_ETIMEOUT when scan_duration_ms ran out). */
static uint8_t hs_connect_fail_reason(int rc)
{
    if (rc > BLE_HS_ERR_HCI_BASE && rc < BLE_HS_ERR_L2C_BASE) {
        return (uint8_t)(rc - BLE_HS_ERR_HCI_BASE);
    }
    return BLE_ERR_UNK_CONN_ID;
}

/* ========================================================================================= */
/* State                                                                                      */
/* ========================================================================================= */

static volatile bool s_active;
static volatile bool s_synced;
static void *s_host_task;           /* NPL id of the NimBLE host task, set on sync */
static bb_config_t s_cfg;
static bool s_have_cfg;
static volatile bool s_read_request; /* s_cfg.read_request, read by the host task */
static uint8_t s_static_addr[BB_ADDR_LEN]; /* our random static address, LSB first */
static volatile bool s_scanning;
static volatile bool s_adv_active;  /* legacy advertising running (ADVERTISE_DONE on connect) */
static bb_addr_t s_connect_peer;    /* peer of the running gap_connect, for its failure event */

/* One buffer per task for flattening mbufs; never shared between tasks. */
static uint8_t s_host_buf[BB_MAX_L2CAP_SDU > BB_MAX_ATTR_LEN ? BB_MAX_L2CAP_SDU : BB_MAX_ATTR_LEN];

static bool in_host_task(void)
{
    return s_host_task != NULL && ble_npl_get_current_task_id() == s_host_task;
}

static void addr_to_bb(const ble_addr_t *in, bb_addr_t *out)
{
    /* NimBLE's PUBLIC_ID/RANDOM_ID (2, 3) keep the public/random bit in bit 0. */
    out->type = (uint8_t)(in->type & 1u);
    memcpy(out->addr, in->val, BB_ADDR_LEN);
}

static void uuid_to_bb(const ble_uuid_any_t *in, bb_uuid_t *out)
{
    memset(out, 0, sizeof(*out));
    switch (in->u.type) {
    case BLE_UUID_TYPE_16:
        out->len = 2;
        out->bytes[0] = (uint8_t)in->u16.value;
        out->bytes[1] = (uint8_t)(in->u16.value >> 8);
        break;
    case BLE_UUID_TYPE_32:
        out->len = 4;
        for (unsigned i = 0; i < 4; i++) {
            out->bytes[i] = (uint8_t)(in->u32.value >> (8 * i));
        }
        break;
    default:
        out->len = 16;
        memcpy(out->bytes, in->u128.value, 16);
        break;
    }
}

static int uuid_from_bb(const bb_uuid_t *in, ble_uuid_any_t *out)
{
    if (ble_uuid_init_from_buf(out, in->bytes, in->len) != 0) {
        return BB_ERR(EINVAL);
    }
    return 0;
}

static uint8_t own_addr_type(void)
{
    switch (s_cfg.addr_mode) {
    case BB_ADDR_MODE_PUBLIC:
        return BLE_OWN_ADDR_PUBLIC;
    case BB_ADDR_MODE_RPA:
        return BLE_OWN_ADDR_RPA_RANDOM_DEFAULT;
    default:
        return BLE_OWN_ADDR_RANDOM;
    }
}

/* ========================================================================================= */
/* Who may call into NimBLE (see "No deadlock" at the top)                                     */
/* ========================================================================================= */

enum { BB_API_FREE = 0, BB_API_CORE, BB_API_STORE };
static volatile uint8_t s_api_owner;

/* Core task, before any NimBLE call of a bb_port_*: 0, -EPERM when the host is not running,
 * -EAGAIN while a store question holds ble_hs_lock. Never waits. */
static int api_enter(void)
{
    if (!s_active) {
        return BB_ERR(EPERM);
    }
    int rc = 0;
    bb_port_critical_enter();
    if (s_api_owner == BB_API_FREE) {
        s_api_owner = BB_API_CORE;
    } else {
        rc = BB_ERR(EAGAIN);
    }
    bb_port_critical_exit();
    return rc;
}

static void api_exit(void)
{
    bb_port_critical_enter();
    s_api_owner = BB_API_FREE;
    bb_port_critical_exit();
}

/* Host task, inside a store callback: true when the core task is out of NimBLE (it may be
 * blocked on the ble_hs_lock we hold, then it never gets out: give up after the claim time). */
static bool store_claim(void)
{
    for (uint32_t waited = 0;; waited++) {
        bool ok = false;
        bb_port_critical_enter();
        if (s_api_owner == BB_API_FREE) {
            s_api_owner = BB_API_STORE;
            ok = true;
        }
        bb_port_critical_exit();
        if (ok) {
            return true;
        }
        if (waited >= BB_NIMBLE_STORE_CLAIM_MS) {
            return false;
        }
        bb_nimble_sleep_ms(1);
    }
}

/* Wrap a bb_port_* body that calls NimBLE. */
#define BB_API_CALL(expr)                 \
    do {                                  \
        int api_rc_ = api_enter();        \
        if (api_rc_ != 0) {               \
            return api_rc_;               \
        }                                 \
        api_rc_ = (expr);                 \
        api_exit();                       \
        return api_rc_;                   \
    } while (0)

/* ========================================================================================= */
/* Calls deferred to the host task                                                            */
/* ========================================================================================= */

typedef enum {
    BB_DEFER_PAIR = 1,        /* ble_gap_security_initiate(conn) */
    BB_DEFER_ERASE_BONDS,     /* ble_store_clear() */
    BB_DEFER_L2CAP_RETRY,     /* hand held-back L2CAP SDUs to the core again */
    BB_DEFER_RESTORE_BONDS,   /* peers' IRKs to the controller, bond cache filled (after sync) */
} bb_defer_op_t;

typedef struct {
    uint8_t op;
    uint16_t arg;
} bb_defer_t;

static bb_defer_t s_defer[BB_NIMBLE_DEFER_QUEUE];
static uint8_t s_defer_head, s_defer_count; /* ring, guarded by bb_port_critical_* */
static struct ble_npl_event s_defer_ev; /* initialised per activation: ESP-IDF's NPL backs it with
                                         * a block of a pool nimble_port_init creates */
static bool s_defer_ev_ready;
static void l2cap_retry_held(void);
static void restore_bonds(void);

static void defer_run(struct ble_npl_event *ev)
{
    (void)ev;
    for (;;) {
        bb_defer_t d;
        bb_port_critical_enter();
        if (s_defer_count == 0) {
            bb_port_critical_exit();
            return;
        }
        d = s_defer[s_defer_head];
        s_defer_head = (uint8_t)((s_defer_head + 1u) % BB_NIMBLE_DEFER_QUEUE);
        s_defer_count--;
        bb_port_critical_exit();

        int rc = 0;
        switch (d.op) {
        case BB_DEFER_PAIR:
            rc = ble_gap_security_initiate(d.arg);
            if (rc != 0 && rc != BLE_HS_EALREADY) {
                /* The host learns of the failure as an unencrypted link. */
                bb_on_encryption_update(d.arg, false, false, false, 0);
                bb_log(1, "gap_pair: ble_gap_security_initiate failed");
            }
            break;
        case BB_DEFER_ERASE_BONDS:
            rc = ble_store_clear();
            if (rc != 0) {
                bb_log(1, "sec_erase_bonds: ble_store_clear failed");
            }
            break;
        case BB_DEFER_L2CAP_RETRY:
            l2cap_retry_held();
            break;
        case BB_DEFER_RESTORE_BONDS:
            restore_bonds();
            break;
        default:
            break;
        }
    }
}

/* Queue a call for the host task. Returns 0, -EPERM when the stack is not running, or -ENOMEM. */
static int defer(bb_defer_op_t op, uint16_t arg)
{
    if (!s_synced) {
        return BB_ERR(EPERM);
    }
    bb_port_critical_enter();
    if (s_defer_count == BB_NIMBLE_DEFER_QUEUE) {
        bb_port_critical_exit();
        return BB_ERR(ENOMEM);
    }
    s_defer[(s_defer_head + s_defer_count) % BB_NIMBLE_DEFER_QUEUE] =
        (bb_defer_t){.op = (uint8_t)op, .arg = arg};
    s_defer_count++;
    bb_port_critical_exit();
    /* Putting an event that is already queued is a no-op in NPL; defer_run drains the ring. */
    ble_npl_eventq_put(nimble_port_get_dflt_eventq(), &s_defer_ev);
    return 0;
}

/* ========================================================================================= */
/* Questions (host task blocks; core task answers)                                            */
/* ========================================================================================= */

static struct {
    uint32_t ref;          /* port_ref of the open question, 0: none */
    uint32_t next_ref;
    bool closed;           /* radio going off: no new questions, defaults at once */
    bool answered;
    bool found;
    uint32_t u;
    uint16_t len;
    uint8_t data[BB_MAX_SECRET];
} s_q;

/* A fresh port_ref, or 0 when questions are closed (the caller applies the default). */
static uint32_t question_open(void)
{
    bb_nimble_answer_drain();
    uint32_t ref = 0;
    bb_port_critical_enter();
    if (!s_q.closed) {
        s_q.next_ref++;
        if (s_q.next_ref == 0) {
            s_q.next_ref = 1;
        }
        s_q.ref = s_q.next_ref;
        s_q.answered = false;
        ref = s_q.ref;
    }
    bb_port_critical_exit();
    return ref;
}

static void question_close(void)
{
    bb_port_critical_enter();
    s_q.ref = 0;
    bb_port_critical_exit();
}

/* Wait for the answer to `ref`; true when answered (s_q holds it), false: apply the default. */
static bool question_wait(uint32_t ref)
{
    bb_nimble_answer_wait(BB_DEFAULTS_QUESTION_TIMEOUT_MS + BB_NIMBLE_ANSWER_GRACE_MS);
    bb_port_critical_enter();
    bool ok = s_q.answered && s_q.ref == ref;
    s_q.ref = 0;
    bb_port_critical_exit();
    return ok;
}

/* Radio going off: release a waiting host task (it applies the default) and refuse new
 * questions until the next activation, so the host task never waits on a core task that is
 * itself waiting for the host task to stop. */
static void questions_shut(bool shut)
{
    bb_port_critical_enter();
    s_q.closed = shut;
    s_q.ref = 0;
    bb_port_critical_exit();
    if (shut) {
        bb_nimble_answer_signal();
    }
}

void bb_port_answer(bb_question_kind_t kind, uint32_t port_ref, const bb_answer_t *answer)
{
    (void)kind;
    bool wake = false;
    bb_port_critical_enter();
    if (port_ref != 0 && port_ref == s_q.ref && !s_q.answered) {
        s_q.answered = true;
        s_q.found = answer->found;
        s_q.u = answer->u;
        s_q.len = 0;
        if (answer->data != NULL) {
            s_q.len = answer->len < sizeof(s_q.data) ? answer->len : (uint16_t)sizeof(s_q.data);
            memcpy(s_q.data, answer->data, s_q.len);
        }
        wake = true;
    }
    bb_port_critical_exit();
    if (wake) {
        bb_nimble_answer_signal();
    }
}

/* ATT error to answer a peer read with (0 allows). Asked only for a peer's read in the host
 * task: NimBLE's own reads (conn BLE_HS_CONN_HANDLE_NONE, e.g. ble_gatts_notify fetching the
 * value) are not the peer's and are always allowed. */
static uint8_t ask_read(uint16_t conn, uint16_t handle)
{
    if (conn == BLE_HS_CONN_HANDLE_NONE || !in_host_task()) {
        return 0;
    }
    uint32_t ref = question_open();
    if (ref == 0) {
        return 0;
    }
    if (bb_on_question_read(ref, conn, handle) < 0) {
        question_close();
        return 0;
    }
    if (!question_wait(ref)) {
        return 0;
    }
    return (uint8_t)s_q.u;
}

/* ========================================================================================= */
/* Bond store: secrets kept by the host (GET_SECRET / SET_SECRET)                              */
/* ========================================================================================= */

/* NimBLE store object type -> protocol secret_type. */
static uint8_t store_sec_type(int obj_type)
{
    switch (obj_type) {
    case BLE_STORE_OBJ_TYPE_OUR_SEC:
        return BB_SECRET_TYPE_OUR_SEC;
    case BLE_STORE_OBJ_TYPE_PEER_SEC:
        return BB_SECRET_TYPE_PEER_SEC;
    case BLE_STORE_OBJ_TYPE_CCCD:
        return BB_SECRET_TYPE_CCCD;
    default:
        return 0;
    }
}

/* Keys and values are serialised field by field (not as C structs) so the host keeps bytes that
 * mean the same to every firmware build: little-endian integers, addr as [type, 6 bytes LSB first]. */
#define BB_STORE_KEY_MAX 9          /* addr (7) + CCCD value handle (2) */
#define BB_STORE_SEC_LEN 67         /* addr 7, key_size 1, ediv 2, rand 8, ltk/irk/csrk 16 each, flags 1 */
#define BB_STORE_CCCD_LEN 12        /* addr 7, handle 2, flags 2, value_changed 1 */
#define BB_STORE_FLAG_LTK 0x01u
#define BB_STORE_FLAG_IRK 0x02u
#define BB_STORE_FLAG_CSRK 0x04u
#define BB_STORE_FLAG_AUTHENTICATED 0x08u
#define BB_STORE_FLAG_SC 0x10u

static uint8_t *put_addr(uint8_t *p, const ble_addr_t *a)
{
    *p++ = a->type;
    memcpy(p, a->val, 6);
    return p + 6;
}

static const uint8_t *get_addr(const uint8_t *p, ble_addr_t *a)
{
    a->type = *p++;
    memcpy(a->val, p, 6);
    return p + 6;
}

static uint8_t *put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        *p++ = (uint8_t)(v >> (8 * i));
    }
    return p;
}

static const uint8_t *get_le(const uint8_t *p, uint64_t *v, unsigned n)
{
    *v = 0;
    for (unsigned i = 0; i < n; i++) {
        *v |= (uint64_t)p[i] << (8 * i);
    }
    return p + n;
}

static uint16_t store_key_encode(int obj_type, const union ble_store_key *key, uint8_t *out)
{
    if (obj_type == BLE_STORE_OBJ_TYPE_CCCD) {
        uint8_t *p = put_addr(out, &key->cccd.peer_addr);
        p = put_le(p, key->cccd.chr_val_handle, 2);
        return (uint16_t)(p - out);
    }
    return (uint16_t)(put_addr(out, &key->sec.peer_addr) - out);
}

static uint16_t store_value_encode(int obj_type, const union ble_store_value *v, uint8_t *out)
{
    uint8_t *p;
    if (obj_type == BLE_STORE_OBJ_TYPE_CCCD) {
        p = put_addr(out, &v->cccd.peer_addr);
        p = put_le(p, v->cccd.chr_val_handle, 2);
        p = put_le(p, v->cccd.flags, 2);
        *p++ = (uint8_t)v->cccd.value_changed;
        return (uint16_t)(p - out);
    }
    const struct ble_store_value_sec *s = &v->sec;
    p = put_addr(out, &s->peer_addr);
    *p++ = s->key_size;
    p = put_le(p, s->ediv, 2);
    p = put_le(p, s->rand_num, 8);
    memcpy(p, s->ltk, 16);
    p += 16;
    memcpy(p, s->irk, 16);
    p += 16;
    memcpy(p, s->csrk, 16);
    p += 16;
    *p++ = (uint8_t)((s->ltk_present ? BB_STORE_FLAG_LTK : 0u) | (s->irk_present ? BB_STORE_FLAG_IRK : 0u) |
                     (s->csrk_present ? BB_STORE_FLAG_CSRK : 0u) |
                     (s->authenticated ? BB_STORE_FLAG_AUTHENTICATED : 0u) | (s->sc ? BB_STORE_FLAG_SC : 0u));
    return (uint16_t)(p - out);
}

static bool store_value_decode(int obj_type, const uint8_t *in, uint16_t len, union ble_store_value *v)
{
    uint64_t x;
    const uint8_t *p = in;
    memset(v, 0, sizeof(*v));
    if (obj_type == BLE_STORE_OBJ_TYPE_CCCD) {
        if (len != BB_STORE_CCCD_LEN) {
            return false;
        }
        p = get_addr(p, &v->cccd.peer_addr);
        p = get_le(p, &x, 2);
        v->cccd.chr_val_handle = (uint16_t)x;
        p = get_le(p, &x, 2);
        v->cccd.flags = (uint16_t)x;
        v->cccd.value_changed = *p ? 1u : 0u;
        return true;
    }
    if (len != BB_STORE_SEC_LEN) {
        return false;
    }
    struct ble_store_value_sec *s = &v->sec;
    p = get_addr(p, &s->peer_addr);
    s->key_size = *p++;
    p = get_le(p, &x, 2);
    s->ediv = (uint16_t)x;
    p = get_le(p, &x, 8);
    s->rand_num = x;
    memcpy(s->ltk, p, 16);
    p += 16;
    memcpy(s->irk, p, 16);
    p += 16;
    memcpy(s->csrk, p, 16);
    p += 16;
    s->ltk_present = (*p & BB_STORE_FLAG_LTK) ? 1u : 0u;
    s->irk_present = (*p & BB_STORE_FLAG_IRK) ? 1u : 0u;
    s->csrk_present = (*p & BB_STORE_FLAG_CSRK) ? 1u : 0u;
    s->authenticated = (*p & BB_STORE_FLAG_AUTHENTICATED) ? 1u : 0u;
    s->sc = (*p & BB_STORE_FLAG_SC) ? 1u : 0u;
    return true;
}

/* Most stored records a by-index scan looks at (every CCCD of every bonded peer). */
#define BB_NIMBLE_STORE_SCAN_MAX 64u

/* One GET_SECRET question (host task, API claimed): true and *value filled when found. */
static bool store_ask_get(int obj_type, uint8_t idx, const uint8_t *key, uint16_t klen,
                          union ble_store_value *value)
{
    uint32_t ref = question_open();
    if (ref == 0) {
        return false;
    }
    if (bb_on_question_get_secret(ref, store_sec_type(obj_type), idx, key, klen) < 0) {
        question_close();
        return false;
    }
    if (!question_wait(ref) || !s_q.found) {
        return false;
    }
    if (!store_value_decode(obj_type, s_q.data, s_q.len, value)) {
        bb_log(1, "store: host returned a secret of the wrong length; ignored");
        return false;
    }
    return true;
}

static int store_read_claimed(int obj_type, const union ble_store_key *key, union ble_store_value *value)
{
    uint8_t kbuf[BB_STORE_KEY_MAX];
    if (obj_type != BLE_STORE_OBJ_TYPE_CCCD) {
        /* Security records: by peer address (one record per peer, as MicroPython keys them;
         * ediv/rand are not part of the key), or the idx-th record when the address is ANY. */
        if (ble_addr_cmp(&key->sec.peer_addr, BLE_ADDR_ANY) == 0) {
            return store_ask_get(obj_type, key->sec.idx, NULL, 0, value) ? 0 : BLE_HS_ENOENT;
        }
        uint16_t klen = store_key_encode(obj_type, key, kbuf);
        return store_ask_get(obj_type, 0, kbuf, klen, value) ? 0 : BLE_HS_ENOENT;
    }
    /* CCCD records: peer ANY and handle 0 are wildcards, idx counts the matches. One exact
     * record is asked by its key; anything else (NimBLE restoring a bonded peer's
     * subscriptions asks "the idx-th CCCD of this peer") walks the host's CCCD records by
     * index and filters here, because the host keeps records by exact key only. */
    const struct ble_store_key_cccd *k = &key->cccd;
    bool any_peer = ble_addr_cmp(&k->peer_addr, BLE_ADDR_ANY) == 0;
    if (!any_peer && k->chr_val_handle != 0 && k->idx == 0) {
        uint16_t klen = store_key_encode(obj_type, key, kbuf);
        return store_ask_get(obj_type, 0, kbuf, klen, value) ? 0 : BLE_HS_ENOENT;
    }
    if (any_peer && k->chr_val_handle == 0) {
        return store_ask_get(obj_type, k->idx, NULL, 0, value) ? 0 : BLE_HS_ENOENT;
    }
    unsigned matches = 0;
    for (unsigned i = 0; i < BB_NIMBLE_STORE_SCAN_MAX; i++) {
        if (!store_ask_get(obj_type, (uint8_t)i, NULL, 0, value)) {
            return BLE_HS_ENOENT;
        }
        if ((any_peer || ble_addr_cmp(&value->cccd.peer_addr, &k->peer_addr) == 0) &&
            (k->chr_val_handle == 0 || value->cccd.chr_val_handle == k->chr_val_handle)) {
            if (matches == k->idx) {
                return 0;
            }
            matches++;
        }
    }
    return BLE_HS_ENOENT;
}

/* Bond cache (host task only: store callbacks and the deferred restore; cleared at radio start
 * before the host task runs). A store callback holds ble_hs_lock and may ask the host only
 * while the core task is out of NimBLE (store_claim); a core task blocked on that very lock
 * never gets out, and under load that happens often. Security records seen since the radio
 * came on (every one the host holds is read at start, restore_bonds) answer such lookups. */
typedef struct {
    bool used;
    uint8_t obj_type;               /* BLE_STORE_OBJ_TYPE_PEER_SEC or _OUR_SEC */
    struct ble_store_value_sec sec; /* peer_addr is the key, as in the host's records */
} bb_bond_cache_t;
static bb_bond_cache_t s_bond_cache[BB_NIMBLE_BOND_CACHE];
static uint8_t s_bond_cache_next; /* slot replaced next when none is free or matching */
static bool s_store_unclaimed;    /* a store read found the core task in NimBLE (restore_bonds) */

static bool is_sec_type(int obj_type)
{
    return obj_type == BLE_STORE_OBJ_TYPE_PEER_SEC || obj_type == BLE_STORE_OBJ_TYPE_OUR_SEC;
}

static bb_bond_cache_t *bond_cache_find(int obj_type, const ble_addr_t *peer)
{
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_bond_cache); i++) {
        bb_bond_cache_t *e = &s_bond_cache[i];
        if (e->used && e->obj_type == (uint8_t)obj_type && ble_addr_cmp(&e->sec.peer_addr, peer) == 0) {
            return e;
        }
    }
    return NULL;
}

static void bond_cache_put(int obj_type, const union ble_store_value *v)
{
    if (!is_sec_type(obj_type)) {
        return;
    }
    bb_bond_cache_t *e = bond_cache_find(obj_type, &v->sec.peer_addr);
    for (unsigned i = 0; e == NULL && i < BB_ARRAY_LEN(s_bond_cache); i++) {
        if (!s_bond_cache[i].used) {
            e = &s_bond_cache[i];
        }
    }
    if (e == NULL) {
        e = &s_bond_cache[s_bond_cache_next];
        s_bond_cache_next = (uint8_t)((s_bond_cache_next + 1u) % BB_ARRAY_LEN(s_bond_cache));
    }
    e->used = true;
    e->obj_type = (uint8_t)obj_type;
    e->sec = v->sec;
}

/* A deleted record (peer ANY: every record of the type) leaves the cache too. */
static void bond_cache_drop(int obj_type, const ble_addr_t *peer)
{
    bool all = ble_addr_cmp(peer, BLE_ADDR_ANY) == 0;
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_bond_cache); i++) {
        bb_bond_cache_t *e = &s_bond_cache[i];
        if (e->used && e->obj_type == (uint8_t)obj_type && (all || ble_addr_cmp(&e->sec.peer_addr, peer) == 0)) {
            e->used = false;
        }
    }
}

static int store_read(int obj_type, const union ble_store_key *key, union ble_store_value *value)
{
    /* Outside the host task the question could not be answered (it goes out through the core
     * task, which would be the caller): no record. */
    if (store_sec_type(obj_type) == 0 || !in_host_task()) {
        return BLE_HS_ENOENT;
    }
    if (!store_claim()) {
        /* Security records by peer address come from the cache (by-index scans do not). */
        if (is_sec_type(obj_type) && ble_addr_cmp(&key->sec.peer_addr, BLE_ADDR_ANY) != 0) {
            const bb_bond_cache_t *e = bond_cache_find(obj_type, &key->sec.peer_addr);
            if (e != NULL) {
                memset(value, 0, sizeof(*value));
                value->sec = e->sec;
                return 0;
            }
        }
        s_store_unclaimed = true;
        bb_log(1, "store: core task busy in NimBLE; bond record reported missing");
        return BLE_HS_ENOENT;
    }
    int rc = store_read_claimed(obj_type, key, value);
    api_exit();
    if (rc == 0) {
        bond_cache_put(obj_type, value);
    }
    return rc;
}

/* NimBLE restores the peers' IRKs to the controller's resolving list in ble_hs_sync, before
 * sync_cb: then store reads cannot reach the host (the host task is not known yet, and the core
 * task is waiting for the sync, so no question could go out), and bonded peers using
 * resolvable private addresses (phones) would not be recognised. So it is done again here, in
 * the host task, once ble_active(True) is done (activate_on): the same NimBLE routine (ble_hs_misc.c, not in NimBLE's
 * public headers; mynewt-nimble 1.x and esp-nimble 1.5/1.6 have it with this signature), its
 * reads answered by the host. Our own records are read too, to fill the bond cache. */
int ble_hs_misc_restore_irks(void);

static int restore_visit(int obj_type, union ble_store_value *val, void *cookie)
{
    (void)obj_type;
    (void)val;
    (void)cookie;
    return 0; /* store_read has cached it; go on */
}

/* Attempts when a read found the core task inside NimBLE (a by-index scan then ends early). */
#define BB_NIMBLE_RESTORE_TRIES 3

static void restore_bonds(void)
{
    int rc = 0;
    for (unsigned attempt = 0; attempt < BB_NIMBLE_RESTORE_TRIES; attempt++) {
        s_store_unclaimed = false;
        rc = ble_hs_misc_restore_irks();
        if (rc == 0) {
            rc = ble_store_iterate(BLE_STORE_OBJ_TYPE_OUR_SEC, restore_visit, NULL);
        }
        if (rc == 0 && !s_store_unclaimed) {
            return;
        }
    }
    bb_log(1, "ble_active: bonds not fully restored (peer IRKs, bond cache)");
}

/* Write (value) or delete (value NULL) one record: 0, or the BLE_HS_* code NimBLE expects. */
static int store_set(int obj_type, const union ble_store_key *key, const union ble_store_value *value)
{
    int fail = value != NULL ? BLE_HS_ESTORE_FAIL : BLE_HS_ENOENT;
    if (store_sec_type(obj_type) == 0) {
        return value != NULL ? BLE_HS_ENOTSUP : BLE_HS_ENOENT; /* a record kind we do not keep */
    }
    if (!in_host_task()) {
        return fail;
    }
    uint8_t kbuf[BB_STORE_KEY_MAX];
    uint8_t vbuf[BB_STORE_SEC_LEN];
    uint16_t klen = store_key_encode(obj_type, key, kbuf);
    uint16_t vlen = value != NULL ? store_value_encode(obj_type, value, vbuf) : 0;
    if (value == NULL && is_sec_type(obj_type)) {
        bond_cache_drop(obj_type, &key->sec.peer_addr); /* gone from the cache whatever the host says */
    }
    if (!store_claim()) {
        bb_log(1, "store: core task busy in NimBLE; bond record not written");
        return fail;
    }
    int rc = fail;
    uint32_t ref = question_open();
    if (ref != 0) {
        if (bb_on_question_set_secret(ref, store_sec_type(obj_type), kbuf, klen,
                                      value != NULL ? vbuf : NULL, vlen) < 0) {
            question_close();
        } else if (question_wait(ref) && s_q.found) {
            rc = 0;
        }
    }
    api_exit();
    if (value != NULL && rc == 0) {
        bond_cache_put(obj_type, value);
    }
    return rc;
}

static int store_write(int obj_type, const union ble_store_value *value)
{
    union ble_store_key key;
    ble_store_key_from_value(obj_type, &key, value);
    return store_set(obj_type, &key, value);
}

static int store_delete(int obj_type, const union ble_store_key *key)
{
    return store_set(obj_type, key, NULL);
}


/* ========================================================================================= */
/* Platform                                                                                    */
/* ========================================================================================= */

/* Connections the controller can hold, so that the handshake never promises more than the
 * radio gives (the host's BLE_MAX_CONNECTIONS alone would). ESP32: the dual-mode controller's
 * CONFIG_BTDM_CTRL_BLE_MAX_CONN(_EFF) (ESP-IDF default 3; sdkconfig.esp32.defaults asks for
 * 4). ESP32-S3 (and the other BLE-only controllers): CONFIG_BT_CTRL_BLE_MAX_ACT(_EFF) counts
 * advertising sets, scanning/initiating and connections together; one advertising set and one
 * scanner or initiator are kept for the port, the rest are connections (sdkconfig.esp32s3.
 * defaults: 6 -> 4). Outside ESP-IDF (the compile check, a native build) the host's limit. */
#if defined(CONFIG_BTDM_CTRL_BLE_MAX_CONN_EFF)
#define BB_NIMBLE_CTRL_MAX_CONN CONFIG_BTDM_CTRL_BLE_MAX_CONN_EFF
#elif defined(CONFIG_BTDM_CTRL_BLE_MAX_CONN)
#define BB_NIMBLE_CTRL_MAX_CONN CONFIG_BTDM_CTRL_BLE_MAX_CONN
#elif defined(CONFIG_BT_CTRL_BLE_MAX_ACT_EFF)
#define BB_NIMBLE_CTRL_MAX_CONN (CONFIG_BT_CTRL_BLE_MAX_ACT_EFF - 2)
#elif defined(CONFIG_BT_CTRL_BLE_MAX_ACT)
#define BB_NIMBLE_CTRL_MAX_CONN (CONFIG_BT_CTRL_BLE_MAX_ACT - 2)
#else
#define BB_NIMBLE_CTRL_MAX_CONN MYNEWT_VAL(BLE_MAX_CONNECTIONS)
#endif
#define BB_NIMBLE_MAX_CONN_2(a, b) ((a) < (b) ? (a) : (b))
#define BB_NIMBLE_MAX_CONN \
    BB_NIMBLE_MAX_CONN_2(BB_NIMBLE_MAX_CONN_2(MYNEWT_VAL(BLE_MAX_CONNECTIONS), BB_NIMBLE_CTRL_MAX_CONN), \
                         BB_MAX_CONNECTIONS)
#if BB_NIMBLE_CTRL_MAX_CONN < 1
#error "the controller configuration leaves no connection (CONFIG_BT_CTRL_BLE_MAX_ACT too small)"
#endif

static bb_port_caps_t s_caps = {
    .board = BB_BOARD,
    .port = "nimble",
    .central = MYNEWT_VAL(BLE_ROLE_CENTRAL) != 0,
    .peripheral = MYNEWT_VAL(BLE_ROLE_PERIPHERAL) != 0,
    .observer = MYNEWT_VAL(BLE_ROLE_OBSERVER) != 0,
    .broadcaster = MYNEWT_VAL(BLE_ROLE_BROADCASTER) != 0,
    .l2cap = MYNEWT_VAL(BLE_L2CAP_COC_MAX_NUM) > 0,
    .pairing = (MYNEWT_VAL(BLE_SM_LEGACY) || MYNEWT_VAL(BLE_SM_SC)) != 0,
    .ext_adv = MYNEWT_VAL(BLE_EXT_ADV) != 0,
    .max_connections = BB_NIMBLE_MAX_CONN,
    .max_mtu = (BLE_ATT_MTU_MAX < BB_MAX_ATTR_LEN + 3 ? BLE_ATT_MTU_MAX : BB_MAX_ATTR_LEN + 3),
    .max_l2cap_mtu = MYNEWT_VAL(BLE_L2CAP_COC_MAX_NUM) > 0 ? BB_MAX_L2CAP_SDU : 0,
    .holds_back_events = false, /* NimBLE callbacks cannot be re-run: a refused event is lost */
};

const bb_port_caps_t *bb_port_caps(void)
{
    return &s_caps;
}

/* L2CAP SDU mbufs (no heap: NimBLE carves blocks out of these static arrays). Receive and send
 * have separate pools because NimBLE grows a receive SDU block by block from the pool of the
 * buffer we gave it and asserts when that fails (ble_l2cap_coc_rx_fn): the receive pool always
 * has room for one full SDU per channel, whatever is being sent. A pkthdr mbuf's first block
 * holds BB_NIMBLE_MBUF_PAYLOAD bytes, later blocks a little more; +1 block of slack per SDU. */
#define BB_NIMBLE_L2CAP_CHANS                                                                    \
    (MYNEWT_VAL(BLE_L2CAP_COC_MAX_NUM) < BB_MAX_L2CAP_CHANNELS ? MYNEWT_VAL(BLE_L2CAP_COC_MAX_NUM) \
                                                               : BB_MAX_L2CAP_CHANNELS)
#define BB_NIMBLE_BLOCKS_PER_SDU ((BB_MAX_L2CAP_SDU + BB_NIMBLE_MBUF_PAYLOAD - 1) / BB_NIMBLE_MBUF_PAYLOAD + 1)
#define BB_NIMBLE_RX_BLOCKS (BB_NIMBLE_L2CAP_CHANS > 0 ? BB_NIMBLE_L2CAP_CHANS * BB_NIMBLE_BLOCKS_PER_SDU : 1)
#define BB_NIMBLE_TX_BLOCKS (BB_NIMBLE_MBUF_BLOCKS - BB_NIMBLE_RX_BLOCKS)
_Static_assert(BB_NIMBLE_MBUF_BLOCKS >= BB_NIMBLE_RX_BLOCKS + BB_NIMBLE_BLOCKS_PER_SDU,
               "BB_NIMBLE_MBUF_BLOCKS: one full receive SDU per channel plus one send SDU");
#define BB_NIMBLE_MBUF_BLOCK_SIZE \
    (BB_NIMBLE_MBUF_PAYLOAD + sizeof(struct os_mbuf) + sizeof(struct os_mbuf_pkthdr))
static os_membuf_t s_rx_mem[OS_MEMPOOL_SIZE(BB_NIMBLE_RX_BLOCKS, BB_NIMBLE_MBUF_BLOCK_SIZE)];
static os_membuf_t s_tx_mem[OS_MEMPOOL_SIZE(BB_NIMBLE_TX_BLOCKS, BB_NIMBLE_MBUF_BLOCK_SIZE)];
static struct os_mempool s_rx_mempool, s_tx_mempool;
static struct os_mbuf_pool s_rx_pool, s_tx_pool;

void bb_nimble_init(void)
{
    os_mempool_init(&s_rx_mempool, BB_NIMBLE_RX_BLOCKS, BB_NIMBLE_MBUF_BLOCK_SIZE, s_rx_mem, "bb_l2cap_rx");
    os_mbuf_pool_init(&s_rx_pool, &s_rx_mempool, BB_NIMBLE_MBUF_BLOCK_SIZE, BB_NIMBLE_RX_BLOCKS);
    os_mempool_init(&s_tx_mempool, BB_NIMBLE_TX_BLOCKS, BB_NIMBLE_MBUF_BLOCK_SIZE, s_tx_mem, "bb_l2cap_tx");
    os_mbuf_pool_init(&s_tx_pool, &s_tx_mempool, BB_NIMBLE_MBUF_BLOCK_SIZE, BB_NIMBLE_TX_BLOCKS);
    bb_nimble_random(s_static_addr, sizeof(s_static_addr));
    s_static_addr[5] |= 0xC0; /* random static: the two most significant bits are 1 */
    s_cfg.addr_mode = BB_ADDR_MODE_PUBLIC;
}

/* ========================================================================================= */
/* GAP events                                                                                  */
/* ========================================================================================= */

static int gap_event(struct ble_gap_event *event, void *arg);
static void l2cap_forget_conn(uint16_t conn);
static int chr_index(uint16_t value_handle);

/* CCCD state each connected peer wrote, per local characteristic (index into the GATT table),
 * from BLE_GAP_EVENT_SUBSCRIBE: what gatts_notify/indicate with BB_CONN_NONE send to whom.
 * Written by the host task, read by the core task, under bb_port_critical_*. */
#define BB_NIMBLE_CONNS \
    (MYNEWT_VAL(BLE_MAX_CONNECTIONS) < BB_MAX_CONNECTIONS ? MYNEWT_VAL(BLE_MAX_CONNECTIONS) : BB_MAX_CONNECTIONS)
static struct {
    bool used;
    uint16_t conn;
    uint8_t cccd[BB_MAX_CHRS]; /* BB_CCCD_NOTIFY | BB_CCCD_INDICATE */
} s_subs[BB_NIMBLE_CONNS];

static void subs_set(uint16_t conn, uint16_t value_handle, bool notify, bool indicate)
{
    int idx = chr_index(value_handle);
    if (idx < 0) {
        return; /* GAP/GATT service characteristics (Service Changed) are NimBLE's own */
    }
    uint8_t v = (uint8_t)((notify ? BB_CCCD_NOTIFY : 0u) | (indicate ? BB_CCCD_INDICATE : 0u));
    bb_port_critical_enter();
    int slot = -1;
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_subs); i++) {
        if (s_subs[i].used && s_subs[i].conn == conn) {
            slot = (int)i;
            break;
        }
        if (!s_subs[i].used && slot < 0) {
            slot = (int)i;
        }
    }
    if (slot >= 0) {
        if (!s_subs[slot].used || s_subs[slot].conn != conn) {
            memset(&s_subs[slot], 0, sizeof(s_subs[slot]));
            s_subs[slot].used = true;
            s_subs[slot].conn = conn;
        }
        s_subs[slot].cccd[idx] = v;
    }
    bb_port_critical_exit();
}

static void subs_forget(uint16_t conn)
{
    bb_port_critical_enter();
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_subs); i++) {
        if (s_subs[i].used && s_subs[i].conn == conn) {
            s_subs[i].used = false;
        }
    }
    bb_port_critical_exit();
}

static void report_connect(uint16_t conn)
{
    struct ble_gap_conn_desc desc;
    if (ble_gap_conn_find(conn, &desc) != 0) {
        return;
    }
    bb_addr_t peer;
    addr_to_bb(&desc.peer_id_addr, &peer);
    if (desc.role == BLE_GAP_ROLE_MASTER) {
        bb_on_peripheral_connect(conn, &peer);
        return;
    }
    bb_on_central_connect(conn, &peer);
#if !MYNEWT_VAL(BLE_EXT_ADV)
    /* Legacy advertising ends with the connection without BLE_GAP_EVENT_ADV_COMPLETE (NimBLE
     * reports that only for a timeout); extended advertising reports it with reason 0. */
    bool was = s_adv_active;
    s_adv_active = false;
    if (was) {
        bb_on_advertise_done(1);
    }
#endif
}

static void report_encryption(uint16_t conn)
{
    struct ble_gap_conn_desc desc;
    if (ble_gap_conn_find(conn, &desc) == 0) {
        bb_on_encryption_update(conn, desc.sec_state.encrypted, desc.sec_state.authenticated,
                                desc.sec_state.bonded, (uint8_t)desc.sec_state.key_size);
    }
}

static void scan_report(const ble_addr_t *addr, uint8_t adv_type, int8_t rssi, const uint8_t *data,
                        uint16_t len)
{
    bb_addr_t a;
    addr_to_bb(addr, &a);
    bb_on_scan_result(&a, adv_type, rssi, data, len);
}

static void scan_finished(void)
{
    bool was;
    bb_port_critical_enter();
    was = s_scanning;
    s_scanning = false;
    bb_port_critical_exit();
    if (was) {
        bb_on_scan_done();
    }
}

#if MYNEWT_VAL(BLE_EXT_ADV)
/* An extended advertising report arrives in fragments (data_status INCOMPLETE until the last
 * one); they are joined here, up to BB_MAX_ADV_EXT bytes, before one SCAN_RESULT. Fragments of
 * one advertiser (address + SID) follow each other; a fragment of another one drops the
 * unfinished report. Host task only. */
static struct {
    bool open;
    ble_addr_t addr;
    uint8_t sid;
    uint16_t len;
    uint8_t data[BB_MAX_ADV_EXT];
} s_ext_rpt;

static void ext_disc_report(const struct ble_gap_ext_disc_desc *d)
{
    bool legacy = (d->props & BLE_HCI_ADV_LEGACY_MASK) != 0;
    if (legacy) {
        /* legacy_event_type is the HCI legacy report type, numbered as constants.adv_type. */
        scan_report(&d->addr, d->legacy_event_type, d->rssi, d->data, d->length_data);
        return;
    }
    if (s_ext_rpt.open && (s_ext_rpt.sid != d->sid || ble_addr_cmp(&s_ext_rpt.addr, &d->addr) != 0)) {
        s_ext_rpt.open = false;
    }
    if (!s_ext_rpt.open) {
        s_ext_rpt.open = true;
        s_ext_rpt.addr = d->addr;
        s_ext_rpt.sid = d->sid;
        s_ext_rpt.len = 0;
    }
    uint16_t room = (uint16_t)(sizeof(s_ext_rpt.data) - s_ext_rpt.len);
    uint16_t n = BB_MIN(d->length_data, room); /* longer chains are cut at BB_MAX_ADV_EXT */
    memcpy(s_ext_rpt.data + s_ext_rpt.len, d->data, n);
    s_ext_rpt.len = (uint16_t)(s_ext_rpt.len + n);
    if (d->data_status == BLE_GAP_EXT_ADV_DATA_STATUS_INCOMPLETE) {
        return;
    }
    /* COMPLETE, or TRUNCATED (the controller gave up on the chain): report what arrived. */
    s_ext_rpt.open = false;
    scan_report(&s_ext_rpt.addr, BB_ADV_TYPE_EXT_ADV, d->rssi, s_ext_rpt.data, s_ext_rpt.len);
}
#endif /* MYNEWT_VAL(BLE_EXT_ADV) */

/* GATTS_INDICATE_DONE status: 0 confirmed, ETIMEDOUT no confirmation within the ATT timeout,
 * EIO the link or the indication failed otherwise (as port sim reports them). */
static uint8_t indicate_status(int rc)
{
    if (rc == BLE_HS_EDONE) {
        return 0;
    }
    return rc == BLE_HS_ETIMEOUT ? BB_STATUS_ETIMEDOUT : BB_STATUS_EIO;
}

static int gap_event(struct ble_gap_event *event, void *arg)
{
    (void)arg;
    switch (event->type) {
    case BLE_GAP_EVENT_CONNECT:
        if (event->connect.status == 0) {
            report_connect(event->connect.conn_handle);
        } else {
            /* Only a central's connect fails here (timeout, cancel, controller error); a failed
             * directed advertisement ends with BLE_GAP_EVENT_ADV_COMPLETE instead. */
            bb_on_peripheral_disconnect(BB_CONN_NONE, &s_connect_peer,
                                        hs_connect_fail_reason(event->connect.status));
        }
        return 0;

    case BLE_GAP_EVENT_DISCONNECT: {
        bb_addr_t peer;
        addr_to_bb(&event->disconnect.conn.peer_id_addr, &peer);
        uint16_t conn = event->disconnect.conn.conn_handle;
        l2cap_forget_conn(conn);
        subs_forget(conn);
        uint8_t reason = hs_disconnect_reason(event->disconnect.reason);
        if (event->disconnect.conn.role == BLE_GAP_ROLE_MASTER) {
            bb_on_peripheral_disconnect(conn, &peer, reason);
        } else {
            bb_on_central_disconnect(conn, &peer, reason);
        }
        return 0;
    }

    case BLE_GAP_EVENT_CONN_UPDATE: {
        /* Units as on air and as MicroPython reports them: interval 1.25 ms, timeout 10 ms. */
        struct ble_gap_conn_desc desc;
        uint16_t conn = event->conn_update.conn_handle;
        if (ble_gap_conn_find(conn, &desc) == 0) {
            bb_on_connection_update(conn, desc.conn_itvl, desc.conn_latency, desc.supervision_timeout,
                                    (uint8_t)hs_status(event->conn_update.status));
        }
        return 0;
    }

    case BLE_GAP_EVENT_CONN_UPDATE_REQ:
    case BLE_GAP_EVENT_L2CAP_UPDATE_REQ:
        return 0; /* accept the peer's parameters (self_params left as NimBLE proposes) */

    case BLE_GAP_EVENT_DISC:
        /* Legacy report: event_type is the HCI report type, numbered as constants.adv_type. */
        scan_report(&event->disc.addr, event->disc.event_type, event->disc.rssi, event->disc.data,
                    event->disc.length_data);
        return 0;

#if MYNEWT_VAL(BLE_EXT_ADV)
    case BLE_GAP_EVENT_EXT_DISC:
        ext_disc_report(&event->ext_disc);
        return 0;
#endif /* MYNEWT_VAL(BLE_EXT_ADV) */

    case BLE_GAP_EVENT_DISC_COMPLETE:
        scan_finished();
        return 0;

    case BLE_GAP_EVENT_ADV_COMPLETE: {
#if MYNEWT_VAL(BLE_EXT_ADV)
        /* Advertising set terminated: reason 0 with the connection that ended it, else
         * BLE_HS_ETIMEOUT (duration or event count) or the host's reset reason. */
        uint8_t why = event->adv_complete.reason == 0 ? 1u : 0u;
#else
        /* Legacy: only a timeout (duration, or high-duty directed advertising, reason 0) or a
         * host reset; a connection never reports here (see report_connect). */
        uint8_t why = 0;
#endif
        bool was = s_adv_active;
        s_adv_active = false;
        if (was) {
            bb_on_advertise_done(why);
        }
        return 0;
    }

    case BLE_GAP_EVENT_ENC_CHANGE:
        report_encryption(event->enc_change.conn_handle);
        return 0;

    case BLE_GAP_EVENT_PASSKEY_ACTION: {
        const struct ble_gap_passkey_params *pk = &event->passkey.params;
        /* BLE_SM_IOACT_NONE/INPUT/DISP/NUMCMP (0, 2, 3, 4) equal constants.passkey_action; the
         * host answers with gap_passkey (-> ble_sm_inject_io). OOB is never negotiated: our
         * pairing requests carry no OOB flag. */
        uint32_t passkey = pk->action == BLE_SM_IOACT_NUMCMP ? pk->numcmp : 0;
        bb_on_passkey_action(event->passkey.conn_handle, pk->action, passkey);
        return 0;
    }

    case BLE_GAP_EVENT_NOTIFY_RX: {
        /* NimBLE frees notify_rx.om after this returns. Longer than MAX_ATTR_LEN: truncated. */
        uint16_t len = 0;
        int rc = ble_hs_mbuf_to_flat(event->notify_rx.om, s_host_buf, BB_MAX_ATTR_LEN, &len);
        if (rc != 0 && rc != BLE_HS_EMSGSIZE) {
            return 0;
        }
        if (event->notify_rx.indication) {
            bb_on_gattc_indicate(event->notify_rx.conn_handle, event->notify_rx.attr_handle, s_host_buf, len);
        } else {
            bb_on_gattc_notify(event->notify_rx.conn_handle, event->notify_rx.attr_handle, s_host_buf, len);
        }
        return 0;
    }

    case BLE_GAP_EVENT_NOTIFY_TX:
        /* Indications report status 0 when sent, then BLE_HS_EDONE when confirmed or another
         * code when they failed; notifications report once (nothing to tell the host). */
        if (event->notify_tx.indication && event->notify_tx.status != 0) {
            bb_on_gatts_indicate_done(event->notify_tx.conn_handle, event->notify_tx.attr_handle,
                                      indicate_status(event->notify_tx.status));
        }
        return 0;

    case BLE_GAP_EVENT_SUBSCRIBE:
        subs_set(event->subscribe.conn_handle, event->subscribe.attr_handle, event->subscribe.cur_notify,
                 event->subscribe.cur_indicate);
        return 0;

    case BLE_GAP_EVENT_MTU:
        bb_on_mtu_exchanged(event->mtu.conn_handle, event->mtu.value);
        return 0;

    case BLE_GAP_EVENT_REPEAT_PAIRING: {
        /* The peer lost its keys: forget ours (asks the host to delete) and pair afresh. */
        struct ble_gap_conn_desc desc;
        if (ble_gap_conn_find(event->repeat_pairing.conn_handle, &desc) == 0) {
            ble_store_util_delete_peer(&desc.peer_id_addr);
        }
        return BLE_GAP_REPEAT_PAIRING_RETRY;
    }

    default:
        return 0;
    }
}

/* ========================================================================================= */
/* Radio and configuration                                                                     */
/* ========================================================================================= */

void bb_nimble_host_stopped(void)
{
    if (s_defer_ev_ready) {
#ifdef ESP_PLATFORM
        /* ESP-IDF's FreeRTOS NPL (not upstream NimBLE's API) gives events a block to return. */
        ble_npl_event_deinit(&s_defer_ev);
#endif /* ESP_PLATFORM */
        s_defer_ev_ready = false;
    }
}

static void gatts_register_cb(struct ble_gatt_register_ctxt *ctxt, void *arg);
static int gatts_add_table(void);
static void l2cap_reset(void);

static void host_reset_cb(int reason)
{
    (void)reason;
    s_synced = false;
    bb_log(0, "NimBLE host reset by the controller");
}

static void apply_address(void)
{
    ble_addr_t a;
    switch (s_cfg.addr_mode) {
    case BB_ADDR_MODE_PUBLIC:
        if (ble_hs_id_copy_addr(BLE_ADDR_PUBLIC, NULL, NULL) == 0) {
            return;
        }
        /* No public address: fall back to the random static one. */
        ble_hs_id_set_rnd(s_static_addr);
        return;
    case BB_ADDR_MODE_NRPA:
        if (ble_hs_id_gen_rnd(1, &a) == 0) {
            ble_hs_id_set_rnd(a.val);
        }
        return;
    default:
        /* RANDOM, and the identity behind RPA. */
        ble_hs_id_set_rnd(s_static_addr);
        return;
    }
}

static void host_sync_cb(void)
{
    s_host_task = ble_npl_get_current_task_id();
    apply_address();
    s_synced = true;
}

static void apply_sm_config(void)
{
    ble_hs_cfg.sm_io_cap = s_cfg.io; /* BB_IO_* equal BLE_HS_IO_* (0..4) */
    ble_hs_cfg.sm_bonding = s_cfg.bond ? 1u : 0u;
    ble_hs_cfg.sm_mitm = s_cfg.mitm ? 1u : 0u;
    ble_hs_cfg.sm_sc = s_cfg.le_secure ? 1u : 0u;
    uint8_t dist = s_cfg.bond ? (uint8_t)(BLE_SM_PAIR_KEY_DIST_ENC | BLE_SM_PAIR_KEY_DIST_ID) : 0u;
    ble_hs_cfg.sm_our_key_dist = dist;
    ble_hs_cfg.sm_their_key_dist = dist;
}

/* Everything of s_cfg that lives in NimBLE or the controller. Core task, API claimed. */
static int apply_config(void)
{
    int rc = ble_svc_gap_device_name_set(s_cfg.gap_name);
    if (rc != 0) {
        return hs_errno(rc);
    }
    rc = ble_svc_gap_device_appearance_set(s_cfg.appearance);
    if (rc != 0) {
        return hs_errno(rc);
    }
    if (s_cfg.mtu >= BLE_ATT_MTU_DFLT) {
        rc = ble_att_set_preferred_mtu(s_cfg.mtu);
        if (rc != 0) {
            return hs_errno(rc);
        }
    }
    apply_sm_config();
    return bb_nimble_set_adv_tx_power(s_cfg.tx_power);
}

static int activate_on(void)
{
    int rc = bb_nimble_stack_init();
    if (rc != 0) {
        return rc;
    }
    /* NPL objects only after nimble_port_init: before it ESP-IDF's NPL function table is NULL. */
    memset(&s_defer_ev, 0, sizeof(s_defer_ev));
    ble_npl_event_init(&s_defer_ev, defer_run, NULL);
    s_defer_ev_ready = true;
    memset(s_bond_cache, 0, sizeof(s_bond_cache)); /* the host task is not running yet */
    s_bond_cache_next = 0;
    ble_hs_cfg.sync_cb = host_sync_cb;
    ble_hs_cfg.reset_cb = host_reset_cb;
    ble_hs_cfg.gatts_register_cb = gatts_register_cb;
    ble_hs_cfg.gatts_register_arg = NULL;
    ble_hs_cfg.store_read_cb = store_read;
    ble_hs_cfg.store_write_cb = store_write;
    ble_hs_cfg.store_delete_cb = store_delete;
    ble_hs_cfg.store_status_cb = ble_store_util_status_rr;
    apply_sm_config();
    /* Services added before the host starts are started by it (ble_gatts_start at sync); the
     * table registered before a previous ble_active(False) comes back with the same handles
     * (NimBLE numbers attributes in registration order). */
    ble_svc_gap_init();
    ble_svc_gatt_init();
    rc = gatts_add_table();
    if (rc != 0) {
        bb_nimble_stack_stop();
        return rc;
    }
    s_api_owner = BB_API_FREE;
    questions_shut(false);
    rc = bb_nimble_stack_run();
    if (rc != 0) {
        bb_nimble_stack_stop();
        return rc;
    }
    for (uint32_t waited = 0; !s_synced; waited += BB_NIMBLE_SYNC_POLL_MS) {
        if (waited >= BB_NIMBLE_SYNC_TIMEOUT_MS) {
            questions_shut(true);
            bb_nimble_stack_stop();
            return BB_ERR(ETIMEDOUT);
        }
        bb_nimble_sleep_ms(BB_NIMBLE_SYNC_POLL_MS);
    }
    s_active = true;
    /* The radio is on from here whatever the configuration says: a setting the stack refused
     * is logged, not reported as a failed activation. */
    if (s_have_cfg && api_enter() == 0) {
        int crc = apply_config();
        api_exit();
        if (crc != 0) {
            bb_log(1, "ble_active: configuration not fully applied");
        }
    }
    /* Only now, with the configuration applied (a store question claims the API), the host task
     * restores the peers' IRKs that ble_hs_sync could not read (restore_bonds). A later
     * re-sync after a host reset reads them itself: the host task is known by then. */
    if (defer(BB_DEFER_RESTORE_BONDS, 0) != 0) {
        bb_log(1, "ble_active: peer IRKs not restored (defer queue full)");
    }
    return 0;
}

int bb_port_ble_activate(bool on)
{
    if (on == s_active) {
        return 0;
    }
    if (on) {
        return activate_on();
    }
    /* Release a host task waiting for an answer and let it answer any further question with the
     * default at once: nimble_port_stop below waits for the host task. */
    questions_shut(true);
    s_adv_active = false;
#if MYNEWT_VAL(BLE_EXT_ADV)
    ble_gap_ext_adv_stop(0);
#else
    ble_gap_adv_stop();
#endif
    ble_gap_conn_cancel();
    if (s_scanning) {
        ble_gap_disc_cancel();
        scan_finished();
    }
    /* Stopping the host terminates every connection; their DISCONNECT events reach the core. */
    int rc = bb_nimble_stack_stop();
    s_active = false;
    s_synced = false;
    s_host_task = NULL;
    l2cap_reset();
    memset(s_subs, 0, sizeof(s_subs));
    bb_port_critical_enter();
    s_defer_count = 0;
    bb_port_critical_exit();
    return rc;
}

static bool s_db_valid;

int bb_port_reset(void)
{
    int rc = bb_port_ble_activate(false);
    s_db_valid = false; /* "as after boot": the next activation has only GAP and GATT services */
    return rc;
}

static int config_apply_active(bool addr_changed)
{
    if (addr_changed) {
        apply_address();
    }
    return apply_config();
}

int bb_port_config_apply(const bb_config_t *cfg)
{
    bool addr_changed = !s_have_cfg || cfg->addr_mode != s_cfg.addr_mode;
    if (!s_active) {
        s_cfg = *cfg;
        s_have_cfg = true;
        s_read_request = cfg->read_request;
        return 0; /* applied when the radio comes on */
    }
    /* Taken only when it can be applied: on -EAGAIN the core keeps its previous config too. */
    int rc = api_enter();
    if (rc != 0) {
        return rc;
    }
    s_cfg = *cfg;
    s_have_cfg = true;
    s_read_request = cfg->read_request;
    rc = config_apply_active(addr_changed);
    api_exit();
    return rc;
}

static int addr_get(bb_addr_t *out)
{
    uint8_t type = s_cfg.addr_mode == BB_ADDR_MODE_PUBLIC ? BLE_ADDR_PUBLIC : BLE_ADDR_RANDOM;
    int rc = ble_hs_id_copy_addr(type, out->addr, NULL);
    if (rc == BLE_HS_ENOADDR && type == BLE_ADDR_PUBLIC) {
        type = BLE_ADDR_RANDOM; /* apply_address fell back to the static random address */
        rc = ble_hs_id_copy_addr(type, out->addr, NULL);
    }
    if (rc != 0) {
        return hs_errno(rc);
    }
    out->type = type == BLE_ADDR_PUBLIC ? BB_ADDR_TYPE_PUBLIC : BB_ADDR_TYPE_RANDOM;
    return 0;
}

int bb_port_addr_get(bb_addr_t *out)
{
    /* Called while the radio is off too (handshake): NimBLE knows our address only once the
     * host has synced with the controller (it reads the public address from it then). */
    if (!s_synced) {
        return s_active ? BB_ERR(EAGAIN) : BB_ERR(EPERM);
    }
    BB_API_CALL(addr_get(out));
}

int bb_port_addr_set_static(const uint8_t addr[BB_ADDR_LEN])
{
    if ((addr[5] & 0xC0) != 0xC0) {
        return BB_ERR(EINVAL); /* not a random static address */
    }
    memcpy(s_static_addr, addr, BB_ADDR_LEN);
    if (s_active && s_cfg.addr_mode != BB_ADDR_MODE_PUBLIC && s_cfg.addr_mode != BB_ADDR_MODE_NRPA) {
        BB_API_CALL(hs_errno(ble_hs_id_set_rnd(s_static_addr)));
    }
    return 0;
}

/* ========================================================================================= */
/* GAP                                                                                         */
/* ========================================================================================= */

/* us -> radio units (rounded down), clamped to [min, max]. */
static uint32_t us_to_units(uint32_t us, uint32_t unit_us, uint32_t min, uint32_t max)
{
    uint32_t v = us / unit_us;
    return v < min ? min : (v > max ? max : v);
}

#if MYNEWT_VAL(BLE_EXT_ADV)
/* ms -> 10 ms units for the extended calls (ext adv and ext scan durations), rounded up so that
 * a short but non-zero time never becomes 0 ("forever"), at most 0xFFFF (655.35 s). */
static uint16_t ms_to_10ms(uint32_t ms)
{
    uint32_t v = ms / BB_MS_PER_TIMEOUT_UNIT + (ms % BB_MS_PER_TIMEOUT_UNIT != 0);
    return (uint16_t)(v > 0xFFFFu ? 0xFFFFu : v);
}

#define BB_ADV_INSTANCE 0

static int ext_adv_set(int (*setter)(uint8_t, struct os_mbuf *), const uint8_t *data, uint16_t len)
{
    struct os_mbuf *om = os_msys_get_pkthdr(len, 0);
    if (om == NULL) {
        return BB_ERR(ENOMEM);
    }
    if (len > 0 && os_mbuf_append(om, data, len) != 0) {
        os_mbuf_free_chain(om);
        return BB_ERR(ENOMEM);
    }
    /* The stack owns om from here, on success and on failure. */
    return hs_errno(setter(BB_ADV_INSTANCE, om));
}

static int advertise_start(const bb_adv_params_t *p)
{
    if (p->extended && p->connectable && p->scannable) {
        return BB_ERR(EINVAL); /* an extended advertising set is connectable or scannable */
    }
    if (!p->extended && (p->adv_len > BB_MAX_ADV_LEGACY || p->resp_len > BB_MAX_ADV_LEGACY)) {
        return BB_ERR(E2BIG);
    }
    if (p->extended && (p->adv_len > MYNEWT_VAL(BLE_EXT_ADV_MAX_SIZE) || p->resp_len > MYNEWT_VAL(BLE_EXT_ADV_MAX_SIZE))) {
        return BB_ERR(E2BIG);
    }
    if (ble_gap_ext_adv_active(BB_ADV_INSTANCE)) {
        ble_gap_ext_adv_stop(BB_ADV_INSTANCE);
    }
    /* Legacy PDUs through the extended API (ESP32-S3) take only the four legacy kinds
     * (Core 5.x Vol 4 Part E 7.8.53): ADV_IND (connectable and scannable), ADV_DIRECT_IND
     * (connectable, directed, neither scannable nor carrying data: NimBLE refuses both,
     * ble_gap_ext_adv_params_validate and ble_gap_ext_adv_set_data), ADV_SCAN_IND and
     * ADV_NONCONN_IND. So a connectable undirected legacy set is always scannable (as the
     * legacy API's BLE_GAP_CONN_MODE_UND gives ADV_IND on the ESP32), and a directed one is
     * never scannable and has no data, as on nrf_sd. */
    bool legacy_directed = !p->extended && p->directed;
    if (legacy_directed && (p->adv_len > 0 || p->resp_len > 0)) {
        return BB_ERR(EINVAL);
    }
    bool scannable = legacy_directed ? false : (!p->extended && p->connectable) ? true : p->scannable;
    s_adv_active = false;
    struct ble_gap_ext_adv_params ep;
    memset(&ep, 0, sizeof(ep));
    ep.connectable = (p->connectable || legacy_directed) ? 1u : 0u;
    ep.scannable = scannable ? 1u : 0u;
    ep.directed = p->directed ? 1u : 0u;
    ep.legacy_pdu = p->extended ? 0u : 1u;
    ep.itvl_min = us_to_units(p->interval_us, BB_US_PER_ADV_UNIT, BB_ADV_ITVL_MIN,
                              p->extended ? BB_EXT_ADV_ITVL_MAX : BB_ADV_ITVL_MAX);
    ep.itvl_max = ep.itvl_min;
    ep.own_addr_type = own_addr_type();
    ep.primary_phy = BLE_HCI_LE_PHY_1M;
    ep.secondary_phy = BLE_HCI_LE_PHY_1M;
    /* The set's power: this advert's, else the configured default (dBm; the controller takes
     * the nearest level it has). */
    ep.tx_power = p->has_tx_power ? p->tx_power : (s_have_cfg ? s_cfg.tx_power : 127 /* no preference */);
    if (p->directed) {
        ep.peer.type = p->peer.type;
        memcpy(ep.peer.val, p->peer.addr, BB_ADDR_LEN);
    }
    int rc = ble_gap_ext_adv_configure(BB_ADV_INSTANCE, &ep, NULL, gap_event, NULL);
    if (rc != 0) {
        return hs_errno(rc);
    }
    if (!(p->extended && p->scannable) && !legacy_directed) {
        rc = ext_adv_set(ble_gap_ext_adv_set_data, p->adv_data, p->adv_len);
        if (rc != 0) {
            return rc;
        }
    }
    if (scannable) {
        rc = ext_adv_set(ble_gap_ext_adv_rsp_set_data, p->resp_data, p->resp_len);
        if (rc != 0) {
            return rc;
        }
    }
    s_adv_active = true; /* before the start: ADV_COMPLETE may come before it returns */
    rc = ble_gap_ext_adv_start(BB_ADV_INSTANCE, ms_to_10ms(p->timeout_ms), 0);
    if (rc != 0) {
        s_adv_active = false;
    }
    return hs_errno(rc);
}

static int advertise_stop(void)
{
    s_adv_active = false; /* a stop on request reports no ADVERTISE_DONE */
    int rc = ble_gap_ext_adv_stop(BB_ADV_INSTANCE);
    return rc == BLE_HS_EALREADY ? 0 : hs_errno(rc);
}

#else /* !MYNEWT_VAL(BLE_EXT_ADV) */

static int advertise_start(const bb_adv_params_t *p)
{
    if (p->extended) {
        return BB_ERR(EOPNOTSUPP); /* this build's NimBLE has CONFIG_BT_NIMBLE_EXT_ADV off */
    }
    if (p->adv_len > BB_MAX_ADV_LEGACY || p->resp_len > BB_MAX_ADV_LEGACY) {
        return BB_ERR(E2BIG);
    }
    if (ble_gap_adv_active()) {
        ble_gap_adv_stop();
    }
    s_adv_active = false;
    /* The controller's advertising power is global: this advert's, else the default again. */
    int rc = 0;
    if (p->has_tx_power || s_have_cfg) {
        rc = bb_nimble_set_adv_tx_power(p->has_tx_power ? p->tx_power : s_cfg.tx_power);
        if (rc != 0) {
            return rc;
        }
    }
    rc = ble_gap_adv_set_data(p->adv_data, (int)p->adv_len);
    if (rc == 0 && p->scannable) {
        rc = ble_gap_adv_rsp_set_data(p->resp_data, (int)p->resp_len);
    }
    if (rc != 0) {
        return hs_errno(rc);
    }
    struct ble_gap_adv_params ap;
    memset(&ap, 0, sizeof(ap));
    /* conn_mode UND + disc_mode GEN: ADV_IND; NON + GEN: ADV_SCAN_IND; NON + NON:
     * ADV_NONCONN_IND; DIR (low duty cycle, interval applies): ADV_DIRECT_IND. */
    ap.conn_mode = p->directed ? BLE_GAP_CONN_MODE_DIR
                               : (p->connectable ? BLE_GAP_CONN_MODE_UND : BLE_GAP_CONN_MODE_NON);
    ap.disc_mode = (!p->directed && (p->connectable || p->scannable)) ? BLE_GAP_DISC_MODE_GEN
                                                                      : BLE_GAP_DISC_MODE_NON;
    ap.itvl_min = (uint16_t)us_to_units(p->interval_us, BB_US_PER_ADV_UNIT, BB_ADV_ITVL_MIN, BB_ADV_ITVL_MAX);
    ap.itvl_max = ap.itvl_min;
    ble_addr_t peer;
    memset(&peer, 0, sizeof(peer));
    if (p->directed) {
        peer.type = p->peer.type;
        memcpy(peer.val, p->peer.addr, BB_ADDR_LEN);
    }
    /* Legacy duration is in ms. */
    int32_t duration = p->timeout_ms != 0 ? (int32_t)BB_MIN(p->timeout_ms, (uint32_t)INT32_MAX) : BLE_HS_FOREVER;
    s_adv_active = true; /* before the start: the connection may come before it returns */
    rc = ble_gap_adv_start(own_addr_type(), p->directed ? &peer : NULL, duration, &ap, gap_event, NULL);
    if (rc != 0) {
        s_adv_active = false;
    }
    return hs_errno(rc);
}

static int advertise_stop(void)
{
    s_adv_active = false; /* a stop on request reports no ADVERTISE_DONE */
    int rc = ble_gap_adv_stop();
    return rc == BLE_HS_EALREADY ? 0 : hs_errno(rc);
}

#endif /* MYNEWT_VAL(BLE_EXT_ADV) */

static int scan_start(const bb_scan_params_t *p)
{
    if (s_scanning) {
        ble_gap_disc_cancel(); /* restart with the new parameters; no SCAN_DONE in between */
    }
#if MYNEWT_VAL(BLE_EXT_ADV)
    /* Extended scanning (reports legacy and extended PDUs); duration in 10 ms units. */
    struct ble_gap_ext_disc_params uncoded;
    memset(&uncoded, 0, sizeof(uncoded));
    uncoded.itvl = (uint16_t)us_to_units(p->interval_us, BB_US_PER_ADV_UNIT, BB_SCAN_ITVL_MIN, BB_EXT_SCAN_ITVL_MAX);
    uncoded.window = (uint16_t)us_to_units(p->window_us, BB_US_PER_ADV_UNIT, BB_SCAN_ITVL_MIN, uncoded.itvl);
    uncoded.passive = p->active ? 0u : 1u;
    s_ext_rpt.open = false;
    int rc = ble_gap_ext_disc(own_addr_type(), ms_to_10ms(p->duration_ms), 0, p->filter_duplicates ? 1u : 0u,
                              0 /* no filter accept list */, 0, &uncoded, NULL, gap_event, NULL);
#else
    /* Legacy scanning; duration in ms. */
    struct ble_gap_disc_params dp;
    memset(&dp, 0, sizeof(dp));
    dp.itvl = (uint16_t)us_to_units(p->interval_us, BB_US_PER_ADV_UNIT, BB_SCAN_ITVL_MIN, BB_SCAN_ITVL_MAX);
    dp.window = (uint16_t)us_to_units(p->window_us, BB_US_PER_ADV_UNIT, BB_SCAN_ITVL_MIN, dp.itvl);
    dp.passive = p->active ? 0u : 1u;
    dp.filter_duplicates = p->filter_duplicates ? 1u : 0u;
    dp.filter_policy = 0; /* no filter accept list */
    int32_t duration = p->duration_ms != 0 ? (int32_t)BB_MIN(p->duration_ms, (uint32_t)INT32_MAX) : BLE_HS_FOREVER;
    int rc = ble_gap_disc(own_addr_type(), duration, &dp, gap_event, NULL);
#endif
    if (rc == 0) {
        s_scanning = true;
    } else if (s_scanning) {
        scan_finished();
    }
    return hs_errno(rc);
}

static int scan_stop(void)
{
    int rc = ble_gap_disc_cancel();
    scan_finished(); /* NimBLE reports no DISC_COMPLETE for a cancel */
    return rc == BLE_HS_EALREADY ? 0 : hs_errno(rc);
}

/* 0 in bb_conn_params_t: NimBLE's defaults. Intervals 1.25 ms units, timeout 10 ms units. */
static void conn_params_to_nimble(const bb_conn_params_t *in, struct ble_gap_conn_params *out)
{
    memset(out, 0, sizeof(*out));
    out->scan_itvl = BLE_GAP_SCAN_FAST_INTERVAL_MIN;
    out->scan_window = BLE_GAP_SCAN_FAST_WINDOW;
    out->itvl_min = in->min_interval_us != 0
                        ? (uint16_t)us_to_units(in->min_interval_us, BB_US_PER_CONN_UNIT, BB_CONN_ITVL_MIN, BB_CONN_ITVL_MAX)
                        : BLE_GAP_INITIAL_CONN_ITVL_MIN;
    out->itvl_max = in->max_interval_us != 0
                        ? (uint16_t)us_to_units(in->max_interval_us, BB_US_PER_CONN_UNIT, BB_CONN_ITVL_MIN, BB_CONN_ITVL_MAX)
                        : BLE_GAP_INITIAL_CONN_ITVL_MAX;
    if (out->itvl_max < out->itvl_min) {
        out->itvl_max = out->itvl_min;
    }
    out->latency = in->latency;
    out->supervision_timeout =
        in->supervision_timeout_ms != 0
            ? (uint16_t)us_to_units(in->supervision_timeout_ms, BB_MS_PER_TIMEOUT_UNIT, BB_SUPERVISION_MIN, BB_SUPERVISION_MAX)
            : BLE_GAP_INITIAL_SUPERVISION_TIMEOUT;
    out->min_ce_len = BLE_GAP_INITIAL_CONN_MIN_CE_LEN;
    out->max_ce_len = BLE_GAP_INITIAL_CONN_MAX_CE_LEN;
}

static int gap_connect(const bb_connect_params_t *p)
{
    ble_addr_t peer = {.type = p->peer.type};
    memcpy(peer.val, p->peer.addr, BB_ADDR_LEN);
    struct ble_gap_conn_params cp;
    conn_params_to_nimble(&p->conn, &cp);
    int32_t duration =
        p->scan_duration_ms != 0 ? (int32_t)BB_MIN(p->scan_duration_ms, (uint32_t)INT32_MAX) : BLE_HS_FOREVER;
    s_connect_peer = p->peer;
    /* NimBLE refuses to connect while discovering (ble_gap.c: BLE_HS_EBUSY). The API stops the
     * scan instead, reports SCAN_DONE and connects, as MicroPython's NimBLE binding
     * (mp_bluetooth_gap_peripheral_connect) and the nrf_sd and sim ports do. */
    if (ble_gap_disc_active()) {
        (void)scan_stop();
    }
#if MYNEWT_VAL(BLE_EXT_ADV)
    return hs_errno(ble_gap_ext_connect(own_addr_type(), &peer, duration, BLE_GAP_LE_PHY_1M_MASK, &cp, NULL,
                                        NULL, gap_event, NULL));
#else
    return hs_errno(ble_gap_connect(own_addr_type(), &peer, duration, &cp, gap_event, NULL));
#endif
}

static int gap_connect_cancel(void)
{
    int rc = ble_gap_conn_cancel();
    return rc == BLE_HS_EALREADY ? BB_ERR(ENOENT) : hs_errno(rc);
}

static int gap_conn_update(uint16_t conn, const bb_conn_params_t *p)
{
    struct ble_gap_conn_params cp;
    conn_params_to_nimble(p, &cp);
    struct ble_gap_upd_params up;
    memset(&up, 0, sizeof(up));
    up.itvl_min = cp.itvl_min;
    up.itvl_max = cp.itvl_max;
    up.latency = cp.latency;
    up.supervision_timeout = cp.supervision_timeout;
    up.min_ce_len = cp.min_ce_len;
    up.max_ce_len = cp.max_ce_len;
    return hs_errno(ble_gap_update_params(conn, &up));
}

int bb_port_gap_advertise_start(const bb_adv_params_t *p)
{
    BB_API_CALL(advertise_start(p));
}

int bb_port_gap_advertise_stop(void)
{
    BB_API_CALL(advertise_stop());
}

int bb_port_gap_scan_start(const bb_scan_params_t *p)
{
    BB_API_CALL(scan_start(p));
}

int bb_port_gap_scan_stop(void)
{
    BB_API_CALL(scan_stop());
}

int bb_port_gap_connect(const bb_connect_params_t *p)
{
    BB_API_CALL(gap_connect(p));
}

int bb_port_gap_connect_cancel(void)
{
    BB_API_CALL(gap_connect_cancel());
}

int bb_port_gap_disconnect(uint16_t conn)
{
    BB_API_CALL(hs_errno(ble_gap_terminate(conn, BLE_ERR_REM_USER_CONN_TERM)));
}

int bb_port_gap_conn_update(uint16_t conn, const bb_conn_params_t *p)
{
    BB_API_CALL(gap_conn_update(conn, p));
}

/* ========================================================================================= */
/* GATT server                                                                                 */
/* ========================================================================================= */

typedef struct {
    uint16_t handle;   /* value handle (characteristic) or descriptor handle, set at registration */
    uint32_t flags;    /* BB_FLAG_* */
    uint16_t max_len;
} bb_nimble_attr_t;

/* NimBLE keeps pointers to these for as long as the table is registered: all static, each array
 * sized for the limits in bb_config.h plus one zeroed terminator per level. */
static struct ble_gatt_svc_def s_svc_defs[BB_MAX_SERVICES + 1];
static struct ble_gatt_chr_def s_chr_defs[BB_MAX_CHRS + BB_MAX_SERVICES];
static struct ble_gatt_dsc_def s_dsc_defs[BB_MAX_DSCS + BB_MAX_CHRS];
static ble_uuid_any_t s_svc_uuids[BB_MAX_SERVICES];
static ble_uuid_any_t s_chr_uuids[BB_MAX_CHRS];
static ble_uuid_any_t s_dsc_uuids[BB_MAX_DSCS];
static bb_nimble_attr_t s_chr_attrs[BB_MAX_CHRS];
static bb_nimble_attr_t s_dsc_attrs[BB_MAX_DSCS];
static uint16_t s_svc_handles[BB_MAX_SERVICES];
static uint8_t s_svc_count;
static unsigned s_chr_count; /* characteristics in s_chr_attrs (0 until a table is registered) */

static uint16_t chr_flags_to_nimble(uint32_t f)
{
    /* Property and permission bits below 0x10000 have NimBLE's values (MicroPython's, too).
     * Authorisation is ours (READ questions), NimBLE's AUTHOR bits are no-ops. LE Secure
     * Connections per attribute has no NimBLE flag: it is approximated by authenticated
     * encryption with a 16-byte key (see gatts_add_table). */
    uint16_t n = (uint16_t)(f & 0xFFFFu & ~(uint32_t)(BB_FLAG_READ_AUTHORIZED | BB_FLAG_WRITE_AUTHORIZED));
    if (f & BB_FLAG_READ_LESC) {
        n |= BLE_GATT_CHR_F_READ_ENC | BLE_GATT_CHR_F_READ_AUTHEN;
    }
    if (f & BB_FLAG_WRITE_LESC) {
        n |= BLE_GATT_CHR_F_WRITE_ENC | BLE_GATT_CHR_F_WRITE_AUTHEN;
    }
    return n;
}

static uint8_t dsc_flags_to_nimble(uint32_t f)
{
    uint8_t n = 0;
    n |= (f & BB_FLAG_READ) ? BLE_ATT_F_READ : 0u;
    n |= (f & (BB_FLAG_WRITE | BB_FLAG_WRITE_NO_RESPONSE)) ? BLE_ATT_F_WRITE : 0u;
    n |= (f & (BB_FLAG_READ_ENCRYPTED | BB_FLAG_READ_LESC)) ? BLE_ATT_F_READ_ENC : 0u;
    n |= (f & (BB_FLAG_READ_AUTHENTICATED | BB_FLAG_READ_LESC)) ? BLE_ATT_F_READ_AUTHEN : 0u;
    n |= (f & (BB_FLAG_WRITE_ENCRYPTED | BB_FLAG_WRITE_LESC)) ? BLE_ATT_F_WRITE_ENC : 0u;
    n |= (f & (BB_FLAG_WRITE_AUTHENTICATED | BB_FLAG_WRITE_LESC)) ? BLE_ATT_F_WRITE_AUTHEN : 0u;
    return n;
}

static uint8_t lesc_key_size(uint32_t f)
{
    return (f & (BB_FLAG_READ_LESC | BB_FLAG_WRITE_LESC)) ? 16u : 0u;
}


_Static_assert(BB_FLAG_READ == BLE_GATT_CHR_F_READ && BB_FLAG_WRITE == BLE_GATT_CHR_F_WRITE &&
                  BB_FLAG_WRITE_NO_RESPONSE == BLE_GATT_CHR_F_WRITE_NO_RSP && BB_FLAG_NOTIFY == BLE_GATT_CHR_F_NOTIFY &&
                  BB_FLAG_INDICATE == BLE_GATT_CHR_F_INDICATE && BB_FLAG_READ_ENCRYPTED == BLE_GATT_CHR_F_READ_ENC &&
                  BB_FLAG_READ_AUTHENTICATED == BLE_GATT_CHR_F_READ_AUTHEN &&
                  BB_FLAG_WRITE_ENCRYPTED == BLE_GATT_CHR_F_WRITE_ENC &&
                  BB_FLAG_WRITE_AUTHENTICATED == BLE_GATT_CHR_F_WRITE_AUTHEN,
              "constants.flag below 0x10000 are NimBLE's BLE_GATT_CHR_F_* bits");

/* Index of a characteristic value handle in s_chr_attrs, or -1. */
static int chr_index(uint16_t value_handle)
{
    for (unsigned i = 0; i < s_chr_count; i++) {
        if (s_chr_attrs[i].handle == value_handle) {
            return (int)i;
        }
    }
    return -1;
}

/* Host-task scratch copy of an attribute value. */
static uint8_t s_attr_copy[BB_MAX_ATTR_LEN];

static int gatts_access(uint16_t conn, uint16_t attr_handle, struct ble_gatt_access_ctxt *ctxt, void *arg)
{
    const bb_nimble_attr_t *a = arg;
    uint16_t len = 0, cap = 0;
    const uint8_t *v;
    switch (ctxt->op) {
    case BLE_GATT_ACCESS_OP_READ_CHR:
    case BLE_GATT_ACCESS_OP_READ_DSC:
        /* NimBLE calls this for every Read Blob of a long read and slices by offset itself, so
         * the whole value is appended each time (and the question is asked each time, as
         * MicroPython asks _IRQ_GATTS_READ_REQUEST). */
        if ((a->flags & BB_FLAG_READ_AUTHORIZED) || s_read_request) {
            uint8_t att = ask_read(conn, attr_handle);
            if (att != 0) {
                return att;
            }
        }
        /* The value's address may change whenever the core task handles gatts_write or
         * set_buffer: look it up and copy it in one critical section. */
        bb_port_critical_enter();
        v = bb_core_gatts_value(attr_handle, &len, &cap);
        if (v != NULL) {
            len = BB_MIN(len, (uint16_t)sizeof(s_attr_copy));
            memcpy(s_attr_copy, v, len);
        }
        bb_port_critical_exit();
        if (v == NULL) {
            return BLE_ATT_ERR_UNLIKELY;
        }
        return os_mbuf_append(ctxt->om, s_attr_copy, len) == 0 ? 0 : BLE_ATT_ERR_INSUFFICIENT_RES;

    case BLE_GATT_ACCESS_OP_WRITE_CHR:
    case BLE_GATT_ACCESS_OP_WRITE_DSC: {
        /* NimBLE has already assembled prepared (long) writes: the whole value at offset 0.
         * Longer than the attribute's buffer is stored truncated by the core, as MicroPython
         * does; only FIXED_LENGTH attributes refuse another length (CircuitPython). */
        uint16_t n = 0;
        int rc = ble_hs_mbuf_to_flat(ctxt->om, s_attr_copy, sizeof(s_attr_copy), &n);
        if (rc != 0 && rc != BLE_HS_EMSGSIZE) {
            return BLE_ATT_ERR_UNLIKELY;
        }
        if (a->flags & BB_FLAG_FIXED_LENGTH) {
            bb_port_critical_enter();
            v = bb_core_gatts_value(attr_handle, &len, &cap);
            bb_port_critical_exit();
            if (v != NULL && OS_MBUF_PKTLEN(ctxt->om) != cap) {
                return BLE_ATT_ERR_INVALID_ATTR_VALUE_LEN;
            }
        }
        /* When the event queue is full the peer is told to retry (Insufficient Resources), so
         * no write is stored without the host hearing of it. */
        if (bb_on_gatts_write(conn, attr_handle, s_attr_copy, n, 0) < 0) {
            return BLE_ATT_ERR_INSUFFICIENT_RES;
        }
        return 0;
    }
    default:
        return BLE_ATT_ERR_UNLIKELY;
    }
}

static void gatts_register_cb(struct ble_gatt_register_ctxt *ctxt, void *arg)
{
    (void)arg;
    switch (ctxt->op) {
    case BLE_GATT_REGISTER_OP_SVC:
        for (uint8_t i = 0; i < s_svc_count; i++) {
            if (ctxt->svc.svc_def == &s_svc_defs[i]) {
                s_svc_handles[i] = ctxt->svc.handle;
            }
        }
        break;
    case BLE_GATT_REGISTER_OP_DSC:
        if (ctxt->dsc.dsc_def->arg != NULL) {
            ((bb_nimble_attr_t *)ctxt->dsc.dsc_def->arg)->handle = ctxt->dsc.handle;
        }
        break;
    default:
        break; /* characteristic value handles arrive through chr_def->val_handle */
    }
}

static int gatts_add_table(void)
{
    if (!s_db_valid || s_svc_count == 0) {
        return 0;
    }
    int rc = ble_gatts_count_cfg(s_svc_defs);
    if (rc == 0) {
        rc = ble_gatts_add_svcs(s_svc_defs);
    }
    return hs_errno(rc);
}

static bool uuid16_is(const bb_uuid_t *u, uint16_t v)
{
    return u->len == 2 && u->bytes[0] == (uint8_t)v && u->bytes[1] == (uint8_t)(v >> 8);
}

/* Fill the static NimBLE table from the core's description. */
static int gatts_build(const bb_gatts_svc_t *svcs, uint8_t svc_count)
{
    unsigned nchr = 0, ndsc = 0, nchr_def = 0, ndsc_def = 0;
    if (svc_count > BB_MAX_SERVICES) {
        return BB_ERR(ENOMEM);
    }
    memset(s_svc_defs, 0, sizeof(s_svc_defs));
    memset(s_chr_defs, 0, sizeof(s_chr_defs));
    memset(s_dsc_defs, 0, sizeof(s_dsc_defs));
    for (uint8_t s = 0; s < svc_count; s++) {
        const bb_gatts_svc_t *svc = &svcs[s];
        if (uuid_from_bb(&svc->uuid, &s_svc_uuids[s]) != 0) {
            return BB_ERR(EINVAL);
        }
        s_svc_defs[s].type = BLE_GATT_SVC_TYPE_PRIMARY;
        s_svc_defs[s].uuid = &s_svc_uuids[s].u;
        s_svc_defs[s].characteristics = svc->chr_count ? &s_chr_defs[nchr_def] : NULL;
        for (uint8_t c = 0; c < svc->chr_count; c++) {
            const bb_gatts_chr_t *chr = &svc->chrs[c];
            if (nchr >= BB_MAX_CHRS) {
                return BB_ERR(ENOMEM);
            }
            bb_nimble_attr_t *ca = &s_chr_attrs[nchr];
            *ca = (bb_nimble_attr_t){.handle = 0, .flags = chr->flags, .max_len = chr->max_len};
            if (uuid_from_bb(&chr->uuid, &s_chr_uuids[nchr]) != 0) {
                return BB_ERR(EINVAL);
            }
            struct ble_gatt_chr_def *cd = &s_chr_defs[nchr_def++];
            cd->uuid = &s_chr_uuids[nchr].u;
            cd->access_cb = gatts_access;
            cd->arg = ca;
            cd->flags = chr_flags_to_nimble(chr->flags);
            cd->min_key_size = lesc_key_size(chr->flags);
            cd->val_handle = &ca->handle;
            nchr++;
            bool any_dsc = false;
            for (uint8_t d = 0; d < chr->dsc_count; d++) {
                const bb_gatts_dsc_t *dsc = &chr->dscs[d];
                if (uuid16_is(&dsc->uuid, BB_UUID_CCCD)) {
                    continue; /* NimBLE adds the CCCD itself for NOTIFY/INDICATE */
                }
                if (ndsc >= BB_MAX_DSCS) {
                    return BB_ERR(ENOMEM);
                }
                if (!any_dsc) {
                    cd->descriptors = &s_dsc_defs[ndsc_def];
                    any_dsc = true;
                }
                bb_nimble_attr_t *da = &s_dsc_attrs[ndsc];
                *da = (bb_nimble_attr_t){.handle = 0, .flags = dsc->flags, .max_len = dsc->max_len};
                if (uuid_from_bb(&dsc->uuid, &s_dsc_uuids[ndsc]) != 0) {
                    return BB_ERR(EINVAL);
                }
                struct ble_gatt_dsc_def *dd = &s_dsc_defs[ndsc_def++];
                dd->uuid = &s_dsc_uuids[ndsc].u;
                dd->att_flags = dsc_flags_to_nimble(dsc->flags);
                dd->min_key_size = lesc_key_size(dsc->flags);
                dd->access_cb = gatts_access;
                dd->arg = da;
                ndsc++;
            }
            if (any_dsc) {
                ndsc_def++; /* zeroed terminator of this characteristic's descriptors */
            }
        }
        nchr_def++; /* zeroed terminator of this service's characteristics */
    }
    s_svc_count = svc_count;
    s_chr_count = nchr;
    return 0;
}

/* Copy the handles NimBLE assigned back into the core's description. */
static void gatts_report_handles(bb_gatts_svc_t *svcs, uint8_t svc_count)
{
    unsigned nchr = 0, ndsc = 0;
    for (uint8_t s = 0; s < svc_count; s++) {
        svcs[s].handle = s_svc_handles[s];
        for (uint8_t c = 0; c < svcs[s].chr_count; c++) {
            bb_gatts_chr_t *chr = &svcs[s].chrs[c];
            uint16_t vh = s_chr_attrs[nchr++].handle;
            chr->value_handle = vh;
            chr->decl_handle = (uint16_t)(vh - 1u);
            /* NimBLE places the CCCD right after the value, before user descriptors. */
            bool has_cccd = (chr->flags & (BB_FLAG_NOTIFY | BB_FLAG_INDICATE)) != 0;
            chr->cccd_handle = has_cccd ? (uint16_t)(vh + 1u) : 0u;
            for (uint8_t d = 0; d < chr->dsc_count; d++) {
                if (uuid16_is(&chr->dscs[d].uuid, BB_UUID_CCCD)) {
                    chr->dscs[d].handle = chr->cccd_handle;
                } else {
                    chr->dscs[d].handle = s_dsc_attrs[ndsc++].handle;
                }
            }
        }
    }
}


/* Replace the local database. NimBLE changes its GATT table only while nothing uses it:
 * ble_gatts_reset/ble_gatts_start fail with BLE_HS_EBUSY (-> -EBUSY) while a connection exists
 * or an advertisement, scan or connect is running; the host stops those first. */
static int gatts_register(bb_gatts_svc_t *svcs, uint8_t svc_count)
{
    int rc = ble_gatts_reset();
    if (rc != 0) {
        return hs_errno(rc);
    }
    s_db_valid = false;
    s_svc_count = 0;
    s_chr_count = 0;
    ble_svc_gap_init();
    ble_svc_gatt_init();
    rc = gatts_build(svcs, svc_count);
    if (rc == 0) {
        s_db_valid = true;
        rc = gatts_add_table();
    }
    if (rc != 0) {
        s_db_valid = false;
        s_chr_count = 0;
        ble_gatts_start(); /* GAP and GATT services alone */
        return rc;
    }
    rc = ble_gatts_start();
    if (rc != 0) {
        s_db_valid = false;
        s_chr_count = 0;
        return hs_errno(rc);
    }
    gatts_report_handles(svcs, svc_count);
    /* A fresh GATT server: the GAP service holds the name and appearance again. */
    return s_have_cfg ? apply_config() : 0;
}

int bb_port_gatts_register(bb_gatts_svc_t *svcs, uint8_t svc_count)
{
    BB_API_CALL(gatts_register(svcs, svc_count));
}

int bb_port_gatts_value_changed(uint16_t value_handle)
{
    /* Nothing is cached here: access callbacks look the value up in the core's pool on every
     * read, and sends with data NULL copy it at the call. */
    (void)value_handle;
    return 0;
}

/* One notification or indication: data, or (data NULL) the core's current value. Core task. */
static int gatts_send_one(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len, bool indicate)
{
    struct os_mbuf *om;
    if (data == NULL) {
        uint16_t cap = 0;
        const uint8_t *v = bb_core_gatts_value(value_handle, &len, &cap);
        if (v == NULL) {
            return BB_ERR(EINVAL);
        }
        om = ble_hs_mbuf_from_flat(v, len);
    } else {
        om = ble_hs_mbuf_from_flat(data, len);
    }
    if (om == NULL) {
        return BB_ERR(ENOMEM);
    }
    /* The *_custom calls consume om on success and on failure; with om given they never read
     * the value through gatts_access. */
    return hs_errno(indicate ? ble_gatts_indicate_custom(conn, value_handle, om)
                             : ble_gatts_notify_custom(conn, value_handle, om));
}

static int gatts_send(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len, bool indicate)
{
    if (conn != BB_CONN_NONE) {
        return gatts_send_one(conn, value_handle, data, len, indicate);
    }
    /* Every subscribed peer, as its CCCD asks (notification when both bits are set, as port
     * sim does). The first failure is returned after trying every peer. */
    int idx = chr_index(value_handle);
    if (idx < 0) {
        return BB_ERR(EINVAL);
    }
    int first_rc = 0;
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_subs); i++) {
        bb_port_critical_enter();
        bool used = s_subs[i].used;
        uint16_t c = s_subs[i].conn;
        uint8_t cccd = s_subs[i].cccd[idx];
        bb_port_critical_exit();
        if (!used || cccd == 0) {
            continue;
        }
        int rc = gatts_send_one(c, value_handle, data, len, (cccd & BB_CCCD_NOTIFY) == 0);
        if (rc != 0 && first_rc == 0) {
            first_rc = rc;
        }
    }
    return first_rc;
}

int bb_port_gatts_notify(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    BB_API_CALL(gatts_send(conn, value_handle, data, len, false));
}

int bb_port_gatts_indicate(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    BB_API_CALL(gatts_send(conn, value_handle, data, len, true));
}

/* ========================================================================================= */
/* GATT client                                                                                 */
/* ========================================================================================= */

static int gattc_svc_cb(uint16_t conn, const struct ble_gatt_error *error, const struct ble_gatt_svc *svc,
                        void *arg)
{
    (void)arg;
    if (error->status == 0 && svc != NULL) {
        bb_uuid_t u;
        uuid_to_bb(&svc->uuid, &u);
        if (bb_on_gattc_service_result(conn, svc->start_handle, svc->end_handle, &u) < 0) {
            /* Results cannot be held back: end the procedure so the host sees it incomplete. */
            bb_on_gattc_service_done(conn, BB_STATUS_ENOMEM);
            return BLE_HS_ENOMEM;
        }
        return 0;
    }
    bb_on_gattc_service_done(conn, hs_status(error->status));
    return 0;
}

static int gattc_discover_services(uint16_t conn, const bb_uuid_t *uuid)
{
    if (uuid == NULL) {
        return hs_errno(ble_gattc_disc_all_svcs(conn, gattc_svc_cb, NULL));
    }
    ble_uuid_any_t u;
    if (uuid_from_bb(uuid, &u) != 0) {
        return BB_ERR(EINVAL);
    }
    return hs_errno(ble_gattc_disc_svc_by_uuid(conn, &u.u, gattc_svc_cb, NULL));
}

static int gattc_chr_cb(uint16_t conn, const struct ble_gatt_error *error, const struct ble_gatt_chr *chr,
                        void *arg)
{
    (void)arg;
    if (error->status == 0 && chr != NULL) {
        bb_uuid_t u;
        uuid_to_bb(&chr->uuid, &u);
        if (bb_on_gattc_characteristic_result(conn, chr->def_handle, chr->val_handle, chr->properties, &u) < 0) {
            bb_on_gattc_characteristic_done(conn, BB_STATUS_ENOMEM);
            return BLE_HS_ENOMEM;
        }
        return 0;
    }
    bb_on_gattc_characteristic_done(conn, hs_status(error->status));
    return 0;
}

static int gattc_discover_characteristics(uint16_t conn, uint16_t start, uint16_t end, const bb_uuid_t *uuid)
{
    if (uuid == NULL) {
        return hs_errno(ble_gattc_disc_all_chrs(conn, start, end, gattc_chr_cb, NULL));
    }
    ble_uuid_any_t u;
    if (uuid_from_bb(uuid, &u) != 0) {
        return BB_ERR(EINVAL);
    }
    return hs_errno(ble_gattc_disc_chrs_by_uuid(conn, start, end, &u.u, gattc_chr_cb, NULL));
}

/* UUID filters of running descriptor discoveries (NimBLE has no by-UUID descriptor discovery). */
typedef struct {
    bool used;
    bool filter;
    ble_uuid_any_t uuid;
} bb_dsc_disc_t;

static bb_dsc_disc_t s_dsc_disc[BB_MAX_CONNECTIONS];

static int gattc_dsc_cb(uint16_t conn, const struct ble_gatt_error *error, uint16_t chr_val_handle,
                        const struct ble_gatt_dsc *dsc, void *arg)
{
    (void)chr_val_handle;
    bb_dsc_disc_t *slot = arg;
    if (error->status == 0 && dsc != NULL) {
        if (slot->filter && ble_uuid_cmp(&slot->uuid.u, &dsc->uuid.u) != 0) {
            return 0;
        }
        bb_uuid_t u;
        uuid_to_bb(&dsc->uuid, &u);
        if (bb_on_gattc_descriptor_result(conn, dsc->handle, &u) < 0) {
            bb_on_gattc_descriptor_done(conn, BB_STATUS_ENOMEM);
            slot->used = false;
            return BLE_HS_ENOMEM;
        }
        return 0;
    }
    bb_on_gattc_descriptor_done(conn, hs_status(error->status));
    slot->used = false;
    return 0;
}

static int gattc_discover_descriptors(uint16_t conn, uint16_t start, uint16_t end, const bb_uuid_t *uuid)
{
    bb_dsc_disc_t *slot = NULL;
    bb_port_critical_enter();
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_dsc_disc); i++) {
        if (!s_dsc_disc[i].used) {
            slot = &s_dsc_disc[i];
            slot->used = true;
            break;
        }
    }
    bb_port_critical_exit();
    if (slot == NULL) {
        return BB_ERR(EBUSY);
    }
    slot->filter = uuid != NULL;
    if (uuid != NULL && uuid_from_bb(uuid, &slot->uuid) != 0) {
        slot->used = false;
        return BB_ERR(EINVAL);
    }
    /* NimBLE's start argument is the characteristic value handle: Find Information begins at
     * the handle after it (ble_gattc.c, ble_gattc_disc_all_dscs_tx: prev_handle + 1). The
     * port's range is inclusive from its first handle (bb_port.h, the sim port, nrf_sd), and
     * callers pass value handle + 1, where the CCCD is: so NimBLE gets start - 1. */
    uint16_t chr_val_handle = start > 0 ? (uint16_t)(start - 1) : 0;
    int rc = ble_gattc_disc_all_dscs(conn, chr_val_handle, end, gattc_dsc_cb, slot);
    if (rc != 0) {
        slot->used = false;
    }
    return hs_errno(rc);
}

/* Long reads are collected whole, then reported as one GATTC_READ_RESULT. */
typedef struct {
    bool used;
    uint16_t handle;
    uint16_t len;
    uint8_t buf[BB_MAX_ATTR_LEN];
} bb_gattc_read_t;

static bb_gattc_read_t s_reads[BB_NIMBLE_GATTC_READS];

static int gattc_read_cb(uint16_t conn, const struct ble_gatt_error *error, struct ble_gatt_attr *attr, void *arg)
{
    bb_gattc_read_t *r = arg;
    if (error->status == 0 && attr != NULL) {
        uint16_t chunk = OS_MBUF_PKTLEN(attr->om);
        uint16_t room = (uint16_t)(sizeof(r->buf) - r->len);
        chunk = chunk < room ? chunk : room; /* longer than MAX_ATTR_LEN: truncated */
        os_mbuf_copydata(attr->om, 0, chunk, r->buf + r->len);
        r->len = (uint16_t)(r->len + chunk);
        return 0;
    }
    uint16_t handle = r->handle;
    int status = error->status;
    /* NimBLE asks for a blob whenever a response filled the MTU; a value of exactly that length
     * ends with Attribute Not Long or Invalid Offset instead of an empty blob: it is complete. */
    if (r->len > 0 && (status == BLE_HS_ATT_ERR(BLE_ATT_ERR_ATTR_NOT_LONG) ||
                       status == BLE_HS_ATT_ERR(BLE_ATT_ERR_INVALID_OFFSET))) {
        status = BLE_HS_EDONE;
    }
    if (status == BLE_HS_EDONE) {
        bb_on_gattc_read_result(conn, handle, r->buf, r->len);
    }
    bb_on_gattc_read_done(conn, handle, hs_status(status));
    r->used = false;
    return 0;
}

static int gattc_read(uint16_t conn, uint16_t value_handle)
{
    bb_gattc_read_t *r = NULL;
    bb_port_critical_enter();
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_reads); i++) {
        if (!s_reads[i].used) {
            r = &s_reads[i];
            r->used = true;
            r->handle = value_handle;
            r->len = 0;
            break;
        }
    }
    bb_port_critical_exit();
    if (r == NULL) {
        return BB_ERR(EBUSY);
    }
    int rc = ble_gattc_read_long(conn, value_handle, 0, gattc_read_cb, r);
    if (rc != 0) {
        r->used = false;
    }
    return hs_errno(rc);
}

static int gattc_write_cb(uint16_t conn, const struct ble_gatt_error *error, struct ble_gatt_attr *attr, void *arg)
{
    uint16_t handle = (uint16_t)(uintptr_t)arg;
    (void)attr;
    bb_on_gattc_write_done(conn, handle, hs_status(error->status));
    return 0;
}

static int gattc_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len, bool with_response)
{
    if (!with_response) {
        return hs_errno(ble_gattc_write_no_rsp_flat(conn, value_handle, data, len));
    }
    void *arg = (void *)(uintptr_t)value_handle;
    uint16_t mtu = ble_att_mtu(conn);
    if (mtu == 0) {
        return BB_ERR(ENOTCONN);
    }
    if (len <= mtu - 3u) {
        return hs_errno(ble_gattc_write_flat(conn, value_handle, data, len, gattc_write_cb, arg));
    }
    struct os_mbuf *om = ble_hs_mbuf_from_flat(data, len);
    if (om == NULL) {
        return BB_ERR(ENOMEM);
    }
    return hs_errno(ble_gattc_write_long(conn, value_handle, 0, om, gattc_write_cb, arg));
}

static int gattc_mtu_cb(uint16_t conn, const struct ble_gatt_error *error, uint16_t mtu, void *arg)
{
    (void)conn;
    (void)error;
    (void)mtu;
    (void)arg;
    return 0; /* MTU_EXCHANGED comes from BLE_GAP_EVENT_MTU, once per exchange */
}

int bb_port_gattc_discover_services(uint16_t conn, const bb_uuid_t *uuid)
{
    BB_API_CALL(gattc_discover_services(conn, uuid));
}

int bb_port_gattc_discover_characteristics(uint16_t conn, uint16_t start, uint16_t end, const bb_uuid_t *uuid)
{
    BB_API_CALL(gattc_discover_characteristics(conn, start, end, uuid));
}

int bb_port_gattc_discover_descriptors(uint16_t conn, uint16_t start, uint16_t end, const bb_uuid_t *uuid)
{
    BB_API_CALL(gattc_discover_descriptors(conn, start, end, uuid));
}

int bb_port_gattc_read(uint16_t conn, uint16_t value_handle)
{
    BB_API_CALL(gattc_read(conn, value_handle));
}

int bb_port_gattc_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len,
                        bool with_response)
{
    BB_API_CALL(gattc_write(conn, value_handle, data, len, with_response));
}

int bb_port_gattc_exchange_mtu(uint16_t conn)
{
    BB_API_CALL(hs_errno(ble_gattc_exchange_mtu(conn, gattc_mtu_cb, NULL)));
}


/* ========================================================================================= */
/* L2CAP connection-oriented channels                                                          */
/* ========================================================================================= */

/* Receive flow control. NimBLE grants the peer ceil(our_mtu / MPS) credits whenever we give the
 * channel a new SDU buffer (ble_l2cap_recv_ready) and dereferences that buffer for the next
 * frame, so a channel with no buffer while the peer still holds credits crashes the host
 * (ble_l2cap_coc_rx_fn). A received SDU is copied out and freed at once; when the core's event
 * queue is full it is held (one per channel) and:
 *  - an SDU that needed every credit (ceil((len + 2) / MPS) frames >= the credits granted)
 *    left the peer with none: no new buffer until the core takes the held SDU (backpressure);
 *  - a shorter one may have left the peer credits: a new buffer is given at once, and a second
 *    SDU arriving before the core has room for the first disconnects the channel (logged) rather
 *    than lose data silently. */
typedef struct {
    bool used;
    struct ble_l2cap_chan *chan;
    uint16_t conn, cid, psm;
    uint16_t our_mtu;
    bool starved;   /* no receive buffer given since the held SDU (peer has no credits) */
    bool held;
    uint16_t held_len;
    uint8_t held_buf[BB_MAX_L2CAP_SDU];
} bb_l2cap_slot_t;

static bb_l2cap_slot_t s_chans[BB_NIMBLE_L2CAP_CHANS > 0 ? BB_NIMBLE_L2CAP_CHANS : 1];
static struct {
    uint16_t psm;
    uint16_t mtu;
} s_servers[BB_NIMBLE_L2CAP_SERVERS];
static volatile bool s_l2cap_held;       /* some slot holds an SDU */
static volatile bool s_l2cap_retry_queued; /* a BB_DEFER_L2CAP_RETRY is in the defer ring */

static bb_l2cap_slot_t *chan_find(const struct ble_l2cap_chan *chan)
{
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_chans); i++) {
        if (s_chans[i].used && s_chans[i].chan == chan) {
            return &s_chans[i];
        }
    }
    return NULL;
}

static bb_l2cap_slot_t *chan_by_cid(uint16_t conn, uint16_t cid)
{
    bb_l2cap_slot_t *found = NULL;
    bb_port_critical_enter();
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_chans); i++) {
        if (s_chans[i].used && s_chans[i].conn == conn && s_chans[i].cid == cid) {
            found = &s_chans[i];
            break;
        }
    }
    bb_port_critical_exit();
    return found;
}

static bb_l2cap_slot_t *chan_add(struct ble_l2cap_chan *chan, uint16_t conn, const struct ble_l2cap_chan_info *info)
{
    bb_port_critical_enter();
    bb_l2cap_slot_t *slot = NULL;
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_chans); i++) {
        if (!s_chans[i].used) {
            slot = &s_chans[i];
            slot->used = true;
            slot->chan = chan;
            slot->conn = conn;
            slot->cid = info->scid;
            slot->psm = info->psm;
            slot->our_mtu = info->our_coc_mtu;
            slot->starved = false;
            slot->held = false;
            break;
        }
    }
    bb_port_critical_exit();
    return slot;
}

static void chan_free(bb_l2cap_slot_t *slot)
{
    bb_port_critical_enter();
    slot->used = false;
    slot->held = false;
    bb_port_critical_exit();
}

/* Give the channel a new receive buffer (host task). False when there was none: the channel is
 * disconnected, since without a buffer it cannot take the peer's next frame. */
static bool l2cap_rx_ready(struct ble_l2cap_chan *chan)
{
    struct os_mbuf *sdu = os_mbuf_get_pkthdr(&s_rx_pool, 0);
    if (sdu != NULL && ble_l2cap_recv_ready(chan, sdu) == 0) {
        return true;
    }
    if (sdu != NULL) {
        os_mbuf_free_chain(sdu);
    }
    bb_log(0, "l2cap: no receive buffer; disconnecting the channel");
    ble_l2cap_disconnect(chan);
    return false;
}

/* True when an SDU of len bytes used every credit NimBLE granted with the buffer. */
static bool sdu_used_all_credits(const bb_l2cap_slot_t *slot, uint16_t len)
{
    const uint32_t mps = MYNEWT_VAL(BLE_L2CAP_COC_MPS);
    uint32_t granted = (slot->our_mtu + mps - 1u) / mps;
    uint32_t frames_min = ((uint32_t)len + 2u + mps - 1u) / mps; /* 2: the SDU length field */
    return frames_min >= granted;
}

/* Host task: one received SDU (already copied to data). */
static void l2cap_received(bb_l2cap_slot_t *slot, const uint8_t *data, uint16_t len)
{
    if (slot->held && bb_on_l2cap_recv(slot->conn, slot->cid, slot->held_buf, slot->held_len) == 0) {
        slot->held = false;
    }
    if (!slot->held && bb_on_l2cap_recv(slot->conn, slot->cid, data, len) == 0) {
        l2cap_rx_ready(slot->chan);
        return;
    }
    if (slot->held) {
        bb_log(0, "l2cap: host link too slow for a second SDU; disconnecting the channel");
        ble_l2cap_disconnect(slot->chan);
        return;
    }
    memcpy(slot->held_buf, data, len);
    slot->held_len = len;
    slot->held = true;
    s_l2cap_held = true; /* bb_nimble_poll schedules l2cap_retry_held */
    if (sdu_used_all_credits(slot, len)) {
        slot->starved = true; /* buffer given when the core takes the SDU */
    } else {
        l2cap_rx_ready(slot->chan);
    }
}

/* Host task (deferred from bb_nimble_poll): offer held SDUs to the core again. */
static void l2cap_retry_held(void)
{
    s_l2cap_retry_queued = false;
    bool still = false;
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_chans); i++) {
        bb_l2cap_slot_t *slot = &s_chans[i];
        if (!slot->used || !slot->held) {
            continue;
        }
        if (bb_on_l2cap_recv(slot->conn, slot->cid, slot->held_buf, slot->held_len) != 0) {
            still = true;
            continue;
        }
        slot->held = false;
        if (slot->starved) {
            slot->starved = false;
            l2cap_rx_ready(slot->chan);
        }
    }
    s_l2cap_held = still;
}

void bb_nimble_poll(void)
{
    /* Core task: the core drained events, so held SDUs may fit now. One retry in flight. */
    if (s_l2cap_held && s_synced && !s_l2cap_retry_queued) {
        s_l2cap_retry_queued = true;
        if (defer(BB_DEFER_L2CAP_RETRY, 0) != 0) {
            s_l2cap_retry_queued = false;
        }
    }
}

/* Answer of L2CAP_ACCEPT (an L2CAP result code) -> the BLE_HS_* code NimBLE turns back into that
 * result (ble_l2cap_sig_ble_hs_err2coc_err); codes it cannot express become No Resources. */
static int l2cap_result_to_hs(uint32_t result)
{
    switch (result) {
    case BLE_L2CAP_COC_ERR_UNKNOWN_LE_PSM:
        return BLE_HS_ENOTSUP;
    case BLE_L2CAP_COC_ERR_INSUFFICIENT_AUTHEN:
        return BLE_HS_EAUTHEN;
    case BLE_L2CAP_COC_ERR_INSUFFICIENT_AUTHOR:
        return BLE_HS_EAUTHOR;
    case BLE_L2CAP_COC_ERR_INSUFFICIENT_KEY_SZ:
        return BLE_HS_EENCRYPT_KEY_SZ;
    case BLE_L2CAP_COC_ERR_INSUFFICIENT_ENC:
        return BLE_HS_EENCRYPT;
    case BLE_L2CAP_COC_ERR_UNACCEPTABLE_PARAMETERS:
        return BLE_HS_EINVAL;
    default:
        return BLE_HS_ENOMEM;
    }
}

/* Status of L2CAP_DISCONNECT for a refused l2cap_connect: the peer's L2CAP result code (NimBLE
 * turned it into a BLE_HS_* code, ble_l2cap_sig_coc_err2ble_hs_err), as port sim reports it;
 * other failures: the errno. */
static uint16_t l2cap_connect_status(int rc)
{
    switch (rc) {
    case BLE_HS_ENOTSUP:
        return BLE_L2CAP_COC_ERR_UNKNOWN_LE_PSM;
    case BLE_HS_ENOMEM:
        return BLE_L2CAP_COC_ERR_NO_RESOURCES;
    case BLE_HS_EAUTHEN:
        return BLE_L2CAP_COC_ERR_INSUFFICIENT_AUTHEN;
    case BLE_HS_EAUTHOR:
        return BLE_L2CAP_COC_ERR_INSUFFICIENT_AUTHOR;
    case BLE_HS_EENCRYPT_KEY_SZ:
        return BLE_L2CAP_COC_ERR_INSUFFICIENT_KEY_SZ;
    case BLE_HS_EENCRYPT:
        return BLE_L2CAP_COC_ERR_INSUFFICIENT_ENC;
    case BLE_HS_EINVAL:
        return BLE_L2CAP_COC_ERR_UNACCEPTABLE_PARAMETERS;
    default:
        return hs_status(rc);
    }
}

static bool server_known(uint16_t psm)
{
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_servers); i++) {
        if (s_servers[i].psm == psm) {
            return true;
        }
    }
    return false;
}

static int l2cap_event(struct ble_l2cap_event *event, void *arg)
{
    (void)arg;
    struct ble_l2cap_chan_info info;
    switch (event->type) {
    case BLE_L2CAP_EVENT_COC_ACCEPT: {
        /* Runs without ble_hs_lock: the question may block the host task. */
        if (ble_l2cap_get_chan_info(event->accept.chan, &info) != 0 || !server_known(info.psm)) {
            return BLE_HS_ENOTSUP;
        }
        uint32_t ref = question_open();
        if (ref != 0) {
            if (bb_on_question_l2cap_accept(ref, event->accept.conn_handle, info.scid, info.psm, info.our_coc_mtu,
                                            event->accept.peer_sdu_size) < 0) {
                question_close();
            } else if (question_wait(ref) && s_q.u != 0) {
                return l2cap_result_to_hs(s_q.u);
            }
        }
        /* Accepted (also the default): the channel needs its first receive buffer now. */
        struct os_mbuf *sdu = os_mbuf_get_pkthdr(&s_rx_pool, 0);
        if (sdu == NULL) {
            return BLE_HS_ENOMEM;
        }
        int rc = ble_l2cap_recv_ready(event->accept.chan, sdu);
        if (rc != 0) {
            os_mbuf_free_chain(sdu);
        }
        return rc;
    }

    case BLE_L2CAP_EVENT_COC_CONNECTED: {
        uint16_t conn = event->connect.conn_handle;
        if (event->connect.status != 0) {
            /* An outgoing l2cap_connect failed: no channel id was ever reported. NimBLE frees
             * the receive buffer given to ble_l2cap_connect with the channel. */
            uint16_t psm = 0;
            if (event->connect.chan != NULL && ble_l2cap_get_chan_info(event->connect.chan, &info) == 0) {
                psm = info.psm;
            }
            bb_on_l2cap_disconnect(conn, 0, psm, l2cap_connect_status(event->connect.status));
            return 0;
        }
        if (ble_l2cap_get_chan_info(event->connect.chan, &info) != 0 ||
            chan_add(event->connect.chan, conn, &info) == NULL) {
            ble_l2cap_disconnect(event->connect.chan);
            return 0;
        }
        bb_on_l2cap_connect(conn, info.scid, info.psm, info.our_coc_mtu, info.peer_coc_mtu);
        return 0;
    }

    case BLE_L2CAP_EVENT_COC_DISCONNECTED: {
        bb_l2cap_slot_t *slot = chan_find(event->disconnect.chan);
        if (slot != NULL) {
            if (slot->held && bb_on_l2cap_recv(slot->conn, slot->cid, slot->held_buf, slot->held_len) != 0) {
                bb_log(0, "l2cap: channel closed with a received SDU the host link had no room for");
            }
            bb_on_l2cap_disconnect(slot->conn, slot->cid, slot->psm, 0);
            chan_free(slot);
        }
        return 0;
    }

    case BLE_L2CAP_EVENT_COC_DATA_RECEIVED: {
        /* We own sdu_rx: copy it out and free it on every path. */
        struct os_mbuf *sdu = event->receive.sdu_rx;
        bb_l2cap_slot_t *slot = chan_find(event->receive.chan);
        if (sdu == NULL) {
            return 0;
        }
        uint16_t len = BB_MIN(OS_MBUF_PKTLEN(sdu), (uint16_t)BB_MAX_L2CAP_SDU);
        int rc = os_mbuf_copydata(sdu, 0, len, s_host_buf);
        os_mbuf_free_chain(sdu);
        if (slot == NULL) {
            return 0;
        }
        if (rc != 0) {
            len = 0;
        }
        l2cap_received(slot, s_host_buf, len);
        return 0;
    }

    case BLE_L2CAP_EVENT_COC_TX_UNSTALLED: {
        bb_l2cap_slot_t *slot = chan_find(event->tx_unstalled.chan);
        if (slot != NULL) {
            bb_on_l2cap_send_ready(slot->conn, slot->cid, hs_status(event->tx_unstalled.status));
        }
        return 0;
    }

    default:
        return 0;
    }
}

static void l2cap_forget_conn(uint16_t conn)
{
    /* NimBLE reports COC_DISCONNECTED for each channel before the link's DISCONNECT; anything
     * left here belongs to a link that is gone. */
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_chans); i++) {
        if (s_chans[i].used && s_chans[i].conn == conn) {
            chan_free(&s_chans[i]);
        }
    }
}

static void l2cap_reset(void)
{
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_chans); i++) {
        if (s_chans[i].used) {
            chan_free(&s_chans[i]);
        }
    }
    /* Stopping the host drops every NimBLE server. */
    memset(s_servers, 0, sizeof(s_servers));
    s_l2cap_held = false;
    s_l2cap_retry_queued = false;
}

static int l2cap_listen(uint16_t psm, uint16_t mtu)
{
#if MYNEWT_VAL(BLE_L2CAP_COC_MAX_NUM) > 0
    if (mtu > BB_MAX_L2CAP_SDU) {
        return BB_ERR(EINVAL); /* receive buffers are sized for BB_MAX_L2CAP_SDU */
    }
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_servers); i++) {
        if (s_servers[i].psm == psm) {
            /* NimBLE keeps a server until the host stops and cannot change its MTU. */
            return s_servers[i].mtu == mtu ? 0 : BB_ERR(EALREADY);
        }
    }
    for (unsigned i = 0; i < BB_ARRAY_LEN(s_servers); i++) {
        if (s_servers[i].psm == 0) {
            int rc = ble_l2cap_create_server(psm, mtu, l2cap_event, NULL);
            if (rc != 0) {
                return hs_errno(rc);
            }
            s_servers[i].psm = psm;
            s_servers[i].mtu = mtu;
            return 0;
        }
    }
    return BB_ERR(ENOMEM);
#else
    (void)psm;
    (void)mtu;
    return BB_ERR(EOPNOTSUPP);
#endif
}

static int l2cap_connect(uint16_t conn, uint16_t psm, uint16_t mtu)
{
#if MYNEWT_VAL(BLE_L2CAP_COC_MAX_NUM) > 0
    if (mtu > BB_MAX_L2CAP_SDU) {
        return BB_ERR(EINVAL);
    }
    struct os_mbuf *sdu = os_mbuf_get_pkthdr(&s_rx_pool, 0);
    if (sdu == NULL) {
        return BB_ERR(ENOMEM);
    }
    /* On success NimBLE owns sdu (the channel's first receive buffer), also if it fails later. */
    int rc = ble_l2cap_connect(conn, psm, mtu, sdu, l2cap_event, NULL);
    if (rc != 0) {
        os_mbuf_free_chain(sdu);
    }
    return hs_errno(rc);
#else
    (void)conn;
    (void)psm;
    (void)mtu;
    return BB_ERR(EOPNOTSUPP);
#endif
}

/* The channel may close in the host task between the lookup and the NimBLE call; NimBLE's API
 * takes the channel pointer unchecked (a window of microseconds, see README known limits). */
static int l2cap_send(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len)
{
    bb_l2cap_slot_t *slot = chan_by_cid(conn, cid);
    if (slot == NULL) {
        return BB_ERR(ENOTCONN);
    }
    struct os_mbuf *sdu = os_mbuf_get_pkthdr(&s_tx_pool, 0);
    if (sdu == NULL) {
        return BB_ERR(ENOMEM);
    }
    if (os_mbuf_append(sdu, data, len) != 0) {
        os_mbuf_free_chain(sdu);
        return BB_ERR(ENOMEM);
    }
    int rc = ble_l2cap_send(slot->chan, sdu);
    switch (rc) {
    case 0:
        return 0;
    case BLE_HS_ESTALLED:
        return 1; /* taken; COC_TX_UNSTALLED -> L2CAP_SEND_READY follows */
    case BLE_HS_EBUSY:
        os_mbuf_free_chain(sdu); /* not taken: the previous SDU is still waiting for credits */
        return BB_ERR(EAGAIN);
    case BLE_HS_EBADDATA:
        os_mbuf_free_chain(sdu); /* not taken: longer than the peer's MTU */
        return BB_ERR(E2BIG);
    default:
        return hs_errno(rc); /* taken and freed by the stack (ble_l2cap_coc_continue_tx) */
    }
}

static int l2cap_disconnect(uint16_t conn, uint16_t cid)
{
    bb_l2cap_slot_t *slot = chan_by_cid(conn, cid);
    if (slot == NULL) {
        return BB_ERR(ENOTCONN);
    }
    return hs_errno(ble_l2cap_disconnect(slot->chan));
}

int bb_port_l2cap_listen(uint16_t psm, uint16_t mtu)
{
    BB_API_CALL(l2cap_listen(psm, mtu));
}

int bb_port_l2cap_connect(uint16_t conn, uint16_t psm, uint16_t mtu)
{
    BB_API_CALL(l2cap_connect(conn, psm, mtu));
}

int bb_port_l2cap_send(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len)
{
    BB_API_CALL(l2cap_send(conn, cid, data, len));
}

int bb_port_l2cap_disconnect(uint16_t conn, uint16_t cid)
{
    BB_API_CALL(l2cap_disconnect(conn, cid));
}

/* ========================================================================================= */
/* Security                                                                                    */
/* ========================================================================================= */

_Static_assert(BB_IO_DISPLAY_ONLY == BLE_HS_IO_DISPLAY_ONLY && BB_IO_DISPLAY_YESNO == BLE_HS_IO_DISPLAY_YESNO &&
                   BB_IO_KEYBOARD_ONLY == BLE_HS_IO_KEYBOARD_ONLY && BB_IO_NO_INPUT_OUTPUT == BLE_HS_IO_NO_INPUT_OUTPUT &&
                   BB_IO_KEYBOARD_DISPLAY == BLE_HS_IO_KEYBOARD_DISPLAY,
               "constants.io are NimBLE's BLE_HS_IO_* values");
_Static_assert(BB_PASSKEY_ACTION_NONE == BLE_SM_IOACT_NONE && BB_PASSKEY_ACTION_INPUT == BLE_SM_IOACT_INPUT &&
                   BB_PASSKEY_ACTION_DISPLAY == BLE_SM_IOACT_DISP &&
                   BB_PASSKEY_ACTION_NUMERIC_COMPARISON == BLE_SM_IOACT_NUMCMP,
               "constants.passkey_action are NimBLE's BLE_SM_IOACT_* values");

static int gap_pair(uint16_t conn)
{
    struct ble_gap_conn_desc desc;
    if (ble_gap_conn_find(conn, &desc) != 0) {
        return BB_ERR(ENOTCONN);
    }
    /* Pairing reads the bond store, which asks the host through this (core) task. */
    return defer(BB_DEFER_PAIR, conn);
}

static int gap_passkey(uint16_t conn, uint8_t action, uint32_t passkey)
{
    struct ble_sm_io io;
    memset(&io, 0, sizeof(io));
    io.action = action;
    switch (action) {
    case BB_PASSKEY_ACTION_INPUT:   /* the passkey the user typed */
    case BB_PASSKEY_ACTION_DISPLAY: /* the passkey we show (NimBLE lets the app choose it) */
        if (passkey > 999999u) {
            return BB_ERR(EINVAL);
        }
        io.passkey = passkey;
        break;
    case BB_PASSKEY_ACTION_NUMERIC_COMPARISON:
        io.numcmp_accept = passkey != 0 ? 1u : 0u;
        break;
    default:
        return BB_ERR(EINVAL);
    }
    return hs_errno(ble_sm_inject_io(conn, &io));
}

static int sec_state(uint16_t conn, bool *encrypted, bool *authenticated, bool *bonded, uint8_t *key_size)
{
    struct ble_gap_conn_desc desc;
    if (ble_gap_conn_find(conn, &desc) != 0) {
        return BB_ERR(ENOTCONN);
    }
    *encrypted = desc.sec_state.encrypted;
    *authenticated = desc.sec_state.authenticated;
    *bonded = desc.sec_state.bonded;
    *key_size = (uint8_t)desc.sec_state.key_size;
    return 0;
}

int bb_port_gap_pair(uint16_t conn)
{
    BB_API_CALL(gap_pair(conn));
}

int bb_port_gap_passkey(uint16_t conn, uint8_t action, uint32_t passkey)
{
    BB_API_CALL(gap_passkey(conn, action, passkey));
}

int bb_port_sec_erase_bonds(void)
{
    /* ble_store_clear reads and deletes through the store, i.e. asks the host: host task. */
    if (!s_synced) {
        return BB_ERR(EPERM);
    }
    return defer(BB_DEFER_ERASE_BONDS, 0);
}

int bb_port_sec_state(uint16_t conn, bool *encrypted, bool *authenticated, bool *bonded, uint8_t *key_size)
{
    BB_API_CALL(sec_state(conn, encrypted, authenticated, bonded, key_size));
}
