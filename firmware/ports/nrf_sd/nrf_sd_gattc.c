/*
 * nrf_sd port: GATT client.
 *
 * The SoftDevice runs one client procedure per link. Discovery results are parked in the
 * link's batch (bb_nrf_conn_t.disc) because 128-bit UUIDs whose base was never registered
 * arrive as BLE_UUID_TYPE_UNKNOWN: the port reads the service or characteristic declaration
 * to learn them, then reports the batch in order. Descriptors use Find Information
 * (sd_ble_gattc_attr_info_discover), which carries full 128-bit UUIDs. UUID filters for
 * characteristics and descriptors (and 128-bit service filters) are applied here.
 *
 * Long values: reads continue with Read Blob while a response fills the MTU; writes longer than
 * one Write Request use Prepare/Execute Write. Both go through one buffer, owned by one link.
 */
#include <string.h>

#include "bb_nrf_sd.h"

static uint8_t s_long_buf[BB_MAX_ATTR_LEN];
static uint16_t s_long_owner = BLE_CONN_HANDLE_INVALID;
static uint16_t s_long_len;   /* read: bytes collected; write: bytes to send */
static uint16_t s_long_off;   /* write: bytes already prepared */

static bool long_take(uint16_t conn)
{
    if (s_long_owner != BLE_CONN_HANDLE_INVALID && s_long_owner != conn) {
        return false;
    }
    s_long_owner = conn;
    return true;
}

static void long_release(uint16_t conn)
{
    if (s_long_owner == conn) {
        s_long_owner = BLE_CONN_HANDLE_INVALID;
    }
}

static bb_nrf_conn_t *idle_conn(uint16_t conn, int *err)
{
    bb_nrf_conn_t *c = bb_nrf_conn(conn);
    if (!c) {
        *err = -BB_STATUS_ENOTCONN;
    } else if (c->gattc_op != BB_NRF_GATTC_IDLE) {
        *err = -BB_STATUS_EBUSY;
        c = NULL;
    }
    return c;
}

/* Emit the "done" event of the link's procedure and end it. */
static int finish(bb_nrf_conn_t *c, uint16_t status)
{
    int r = 0;
    switch (c->gattc_op) {
    case BB_NRF_GATTC_SERVICES: r = bb_on_gattc_service_done(c->handle, status); break;
    case BB_NRF_GATTC_CHARACTERISTICS: r = bb_on_gattc_characteristic_done(c->handle, status); break;
    case BB_NRF_GATTC_DESCRIPTORS: r = bb_on_gattc_descriptor_done(c->handle, status); break;
    case BB_NRF_GATTC_READ: r = bb_on_gattc_read_done(c->handle, c->gattc_handle, status); break;
    case BB_NRF_GATTC_WRITE:
    case BB_NRF_GATTC_WRITE_LONG: r = bb_on_gattc_write_done(c->handle, c->gattc_handle, status); break;
    default: break; /* CANCELLING: its write was reported when the cancel went out */
    }
    if (r == -BB_STATUS_ENOMEM) {
        return r;
    }
    if (c->gattc_op == BB_NRF_GATTC_READ || c->gattc_op == BB_NRF_GATTC_WRITE_LONG) {
        long_release(c->handle);
    }
    c->gattc_op = BB_NRF_GATTC_IDLE;
    return 0;
}

void bb_nrf_gattc_conn_closed(bb_nrf_conn_t *c)
{
    if (c->gattc_op != BB_NRF_GATTC_IDLE) {
        (void)finish(c, BB_ATT_ERROR_UNLIKELY_ERROR);
    }
    long_release(c->handle);
}

/* ------------------------------------------------------------------------------------------ */
/* Discovery                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static uint32_t discover_from(bb_nrf_conn_t *c, uint16_t start)
{
    ble_gattc_handle_range_t range = {start, c->gattc_end};
    switch (c->gattc_op) {
    case BB_NRF_GATTC_SERVICES: {
        ble_uuid_t u;
        /* A 16-bit filter goes to the stack (Find By Type Value); others are applied here. */
        if (c->gattc_has_filter && c->gattc_filter.len == 2 && bb_nrf_uuid_to_sd(&u, &c->gattc_filter) == 0) {
            return sd_ble_gattc_primary_services_discover(c->handle, start, &u);
        }
        return sd_ble_gattc_primary_services_discover(c->handle, start, NULL);
    }
    case BB_NRF_GATTC_CHARACTERISTICS:
        return sd_ble_gattc_characteristics_discover(c->handle, &range);
    case BB_NRF_GATTC_DESCRIPTORS:
        return sd_ble_gattc_attr_info_discover(c->handle, &range);
    default:
        return NRF_ERROR_INVALID_STATE;
    }
}

static int start_discovery(uint16_t conn, uint8_t op, uint16_t start, uint16_t end, const bb_uuid_t *uuid)
{
    int err = 0;
    bb_nrf_conn_t *c = idle_conn(conn, &err);
    if (!c) {
        return err;
    }
    if (start == 0 || start > end) {
        return -BB_STATUS_EINVAL;
    }
    c->gattc_op = op;
    c->gattc_end = end;
    c->gattc_has_filter = uuid != NULL;
    if (uuid) {
        c->gattc_filter = *uuid;
    }
    c->disc_count = 0;
    c->disc_idx = 0;
    err = bb_nrf_err(discover_from(c, start));
    if (err) {
        c->gattc_op = BB_NRF_GATTC_IDLE;
    }
    return err;
}

int bb_port_gattc_discover_services(uint16_t conn, const bb_uuid_t *uuid)
{
    return start_discovery(conn, BB_NRF_GATTC_SERVICES, BLE_GATT_HANDLE_START, BLE_GATT_HANDLE_END, uuid);
}

int bb_port_gattc_discover_characteristics(uint16_t conn, uint16_t start, uint16_t end, const bb_uuid_t *uuid)
{
    return start_discovery(conn, BB_NRF_GATTC_CHARACTERISTICS, start, end, uuid);
}

int bb_port_gattc_discover_descriptors(uint16_t conn, uint16_t start, uint16_t end, const bb_uuid_t *uuid)
{
    return start_discovery(conn, BB_NRF_GATTC_DESCRIPTORS, start, end, uuid);
}

/* Report parked results from disc_idx on; read a declaration when a UUID is unknown; when the
 * batch is through, continue discovery or finish. Re-entrant after -ENOMEM. */
static int advance(bb_nrf_conn_t *c)
{
    while (c->disc_idx < c->disc_count) {
        bb_nrf_disc_item_t *it = &c->disc[c->disc_idx];
        if (!it->resolved) {
            uint32_t e = sd_ble_gattc_read(c->handle, it->h1, 0);
            if (e == NRF_SUCCESS) {
                return 0; /* READ_RSP resumes here */
            }
            it->resolved = true; /* unreadable declaration: report the attribute untyped */
            it->uuid.len = 0;
        }
        bool match = !c->gattc_has_filter || bb_nrf_uuid_equal(&it->uuid, &c->gattc_filter);
        if (match && it->uuid.len) {
            int r = 0;
            switch (c->gattc_op) {
            case BB_NRF_GATTC_SERVICES:
                r = bb_on_gattc_service_result(c->handle, it->h1, it->h2, &it->uuid);
                break;
            case BB_NRF_GATTC_CHARACTERISTICS:
                r = bb_on_gattc_characteristic_result(c->handle, it->h1, it->h2, it->props, &it->uuid);
                break;
            case BB_NRF_GATTC_DESCRIPTORS:
                r = bb_on_gattc_descriptor_result(c->handle, it->h1, &it->uuid);
                break;
            default:
                break;
            }
            if (r == -BB_STATUS_ENOMEM) {
                return r;
            }
        }
        c->disc_idx++;
    }
    if (c->gattc_next != 0 && c->gattc_next <= c->gattc_end) {
        c->disc_count = 0;
        c->disc_idx = 0;
        uint32_t e = discover_from(c, c->gattc_next);
        if (e == NRF_SUCCESS) {
            return 0;
        }
        return finish(c, BB_ATT_ERROR_UNLIKELY_ERROR);
    }
    return finish(c, 0);
}

/* Park one response; returns the handle after the last parked entry (0: end of range). */
static void park(bb_nrf_conn_t *c, const ble_gattc_evt_t *e, uint16_t evt_id)
{
    uint16_t n = 0, last = 0, total = 0;
    c->disc_count = 0;
    c->disc_idx = 0;
    switch (evt_id) {
    case BLE_GATTC_EVT_PRIM_SRVC_DISC_RSP:
        total = e->params.prim_srvc_disc_rsp.count;
        for (n = 0; n < total && n < BB_NRF_SD_DISC_BATCH; n++) {
            const ble_gattc_service_t *s = &e->params.prim_srvc_disc_rsp.services[n];
            bb_nrf_disc_item_t *it = &c->disc[n];
            it->h1 = s->handle_range.start_handle;
            it->h2 = s->handle_range.end_handle;
            it->resolved = bb_nrf_uuid_from_sd(&it->uuid, &s->uuid);
            last = s->handle_range.end_handle;
        }
        break;
    case BLE_GATTC_EVT_CHAR_DISC_RSP:
        total = e->params.char_disc_rsp.count;
        for (n = 0; n < total && n < BB_NRF_SD_DISC_BATCH; n++) {
            const ble_gattc_char_t *ch = &e->params.char_disc_rsp.chars[n];
            bb_nrf_disc_item_t *it = &c->disc[n];
            it->h1 = ch->handle_decl;
            it->h2 = ch->handle_value;
            it->props = (uint8_t)(ch->char_props.broadcast | (ch->char_props.read << 1) |
                                  (ch->char_props.write_wo_resp << 2) | (ch->char_props.write << 3) |
                                  (ch->char_props.notify << 4) | (ch->char_props.indicate << 5) |
                                  (ch->char_props.auth_signed_wr << 6) | (ch->char_ext_props << 7));
            it->resolved = bb_nrf_uuid_from_sd(&it->uuid, &ch->uuid);
            last = ch->handle_value;
        }
        break;
    case BLE_GATTC_EVT_ATTR_INFO_DISC_RSP: {
        const ble_gattc_evt_attr_info_disc_rsp_t *a = &e->params.attr_info_disc_rsp;
        total = a->count;
        for (n = 0; n < total && n < BB_NRF_SD_DISC_BATCH; n++) {
            bb_nrf_disc_item_t *it = &c->disc[n];
            it->resolved = true;
            if (a->format == BLE_GATTC_ATTR_INFO_FORMAT_16BIT) {
                it->h1 = a->info.attr_info16[n].handle;
                it->uuid.len = 2;
                it->uuid.bytes[0] = (uint8_t)a->info.attr_info16[n].uuid.uuid;
                it->uuid.bytes[1] = (uint8_t)(a->info.attr_info16[n].uuid.uuid >> 8);
            } else {
                it->h1 = a->info.attr_info128[n].handle;
                bb_nrf_uuid_from_le128(&it->uuid, a->info.attr_info128[n].uuid.uuid128);
            }
            last = it->h1;
        }
        break;
    }
    default:
        break;
    }
    c->disc_count = (uint8_t)n;
    c->gattc_next = (last == 0 || last >= BLE_GATT_HANDLE_END) ? 0 : (uint16_t)(last + 1);
}

static int on_discovery_rsp(bb_nrf_conn_t *c, const ble_gattc_evt_t *e, uint16_t evt_id)
{
    if (bb_nrf_stage == 0) {
        if (e->gatt_status == BLE_GATT_STATUS_ATTERR_ATTRIBUTE_NOT_FOUND) {
            return finish(c, 0); /* range exhausted */
        }
        if (e->gatt_status != BLE_GATT_STATUS_SUCCESS) {
            return finish(c, bb_nrf_att_status(e->gatt_status));
        }
        park(c, e, evt_id);
        bb_nrf_stage = 1; /* parked once: a held re-run resumes from disc_idx */
    }
    return advance(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Read and write                                                                                */
/* ------------------------------------------------------------------------------------------ */

int bb_port_gattc_read(uint16_t conn, uint16_t value_handle)
{
    int err = 0;
    bb_nrf_conn_t *c = idle_conn(conn, &err);
    if (!c) {
        return err;
    }
    if (!long_take(conn)) {
        return -BB_STATUS_EBUSY;
    }
    s_long_len = 0;
    err = bb_nrf_err(sd_ble_gattc_read(conn, value_handle, 0));
    if (err) {
        long_release(conn);
        return err;
    }
    c->gattc_op = BB_NRF_GATTC_READ;
    c->gattc_handle = value_handle;
    return 0;
}

/* A long read collects Read Blob responses in s_long_buf. Held-event stages: 0 nothing done,
 * 1 this response appended (a re-run must not append it twice), 2 the value reported. */
static int on_read_rsp(bb_nrf_conn_t *c, const ble_gattc_evt_t *e)
{
    const ble_gattc_evt_read_rsp_t *r = &e->params.read_rsp;
    if (c->gattc_op != BB_NRF_GATTC_READ && c->gattc_op != BB_NRF_GATTC_SERVICES &&
        c->gattc_op != BB_NRF_GATTC_CHARACTERISTICS) {
        return 0; /* no read of ours is running */
    }
    if (c->gattc_op != BB_NRF_GATTC_READ) {
        /* A declaration read for UUID resolution, for the entry at disc_idx. Only on the first
         * run (stage 0): when advance() then has its result refused (held event), disc_idx may
         * already be past that entry, and a replay must not write this UUID into another. */
        if (bb_nrf_stage == 0 && c->disc_idx < c->disc_count) {
            bb_nrf_disc_item_t *it = &c->disc[c->disc_idx];
            it->resolved = true;
            it->uuid.len = 0;
            if (e->gatt_status == BLE_GATT_STATUS_SUCCESS) {
                /* service declaration: the UUID; characteristic: props, value handle, UUID */
                if (c->gattc_op == BB_NRF_GATTC_SERVICES && r->len == 16) {
                    bb_nrf_uuid_from_le128(&it->uuid, r->data);
                } else if (c->gattc_op == BB_NRF_GATTC_CHARACTERISTICS && r->len == 19) {
                    bb_nrf_uuid_from_le128(&it->uuid, r->data + 3);
                }
            }
        }
        bb_nrf_stage = 1;
        return advance(c);
    }
    if (bb_nrf_stage == 0) {
        bool end_of_value = e->gatt_status == BLE_GATT_STATUS_ATTERR_INVALID_OFFSET ||
                            e->gatt_status == BLE_GATT_STATUS_ATTERR_ATTRIBUTE_NOT_LONG;
        if (e->gatt_status != BLE_GATT_STATUS_SUCCESS && !(end_of_value && s_long_len > 0)) {
            return finish(c, bb_nrf_att_status(e->gatt_status));
        }
        if (e->gatt_status == BLE_GATT_STATUS_SUCCESS) {
            uint16_t room = (uint16_t)(sizeof s_long_buf - s_long_len);
            uint16_t n = r->len < room ? r->len : room;
            memcpy(s_long_buf + s_long_len, r->data, n);
            s_long_len = (uint16_t)(s_long_len + n);
            /* A full response (MTU - 1 bytes) may mean more: continue with Read Blob. */
            if (r->len == c->att_mtu - 1 && s_long_len < sizeof s_long_buf &&
                sd_ble_gattc_read(c->handle, c->gattc_handle, s_long_len) == NRF_SUCCESS) {
                return 0;
            }
        }
        bb_nrf_stage = 1;
    }
    if (bb_nrf_stage == 1) {
        if (bb_on_gattc_read_result(c->handle, c->gattc_handle, s_long_buf, s_long_len) == -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM;
        }
        bb_nrf_stage = 2;
    }
    return finish(c, 0);
}

int bb_port_gattc_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len,
                        bool with_response)
{
    int err = 0;
    bb_nrf_conn_t *c;
    ble_gattc_write_params_t wp;
    memset(&wp, 0, sizeof wp);
    wp.handle = value_handle;
    if (!with_response) {
        c = bb_nrf_conn(conn);
        if (!c) {
            return -BB_STATUS_ENOTCONN;
        }
        if (len > c->att_mtu - 3) {
            return -BB_STATUS_E2BIG; /* a Write Command is one PDU */
        }
        wp.write_op = BLE_GATT_OP_WRITE_CMD;
        wp.len = len;
        wp.p_value = data;
        /* Flow control as for notifications (bb_nrf_tx_wait): wait for a queue slot. */
        if (c->wrcmd_inflight >= BB_NRF_WRCMD_QUEUE && !bb_nrf_tx_wait(conn, BB_NRF_TXQ_WRCMD)) {
            return bb_nrf_conn(conn) ? -BB_STATUS_EAGAIN : -BB_STATUS_ENOTCONN;
        }
        uint32_t e = sd_ble_gattc_write(conn, &wp);
        if (e == NRF_ERROR_RESOURCES) {
            c = bb_nrf_conn(conn); /* a wait may have pulled events */
            if (c != NULL) {
                c->wrcmd_inflight = BB_NRF_WRCMD_QUEUE; /* full although counted otherwise */
            }
            if (!bb_nrf_tx_wait(conn, BB_NRF_TXQ_WRCMD)) {
                return bb_nrf_conn(conn) ? -BB_STATUS_EAGAIN : -BB_STATUS_ENOTCONN;
            }
            e = sd_ble_gattc_write(conn, &wp);
        }
        err = bb_nrf_err(e);
        c = bb_nrf_conn(conn); /* a wait pulled events: look the link up again */
        if (err == 0 && c != NULL) {
            c->wrcmd_inflight++; /* WRITE_CMD_TX_COMPLETE gives it back */
        }
        return err;
    }
    c = idle_conn(conn, &err);
    if (!c) {
        return err;
    }
    if (len <= c->att_mtu - 3) {
        wp.write_op = BLE_GATT_OP_WRITE_REQ;
        wp.len = len;
        wp.p_value = data;
        err = bb_nrf_err(sd_ble_gattc_write(conn, &wp));
        if (err == 0) {
            c->gattc_op = BB_NRF_GATTC_WRITE;
            c->gattc_handle = value_handle;
        }
        return err;
    }
    /* Long write: Prepare Write in MTU - 5 byte pieces, then Execute. */
    if (len > sizeof s_long_buf) {
        return -BB_STATUS_E2BIG;
    }
    if (!long_take(conn)) {
        return -BB_STATUS_EBUSY;
    }
    memcpy(s_long_buf, data, len);
    s_long_len = len;
    s_long_off = 0;
    c->gattc_op = BB_NRF_GATTC_WRITE_LONG;
    c->gattc_handle = value_handle;
    uint16_t piece = (uint16_t)(c->att_mtu - 5);
    wp.write_op = BLE_GATT_OP_PREP_WRITE_REQ;
    wp.len = piece;
    wp.p_value = s_long_buf;
    err = bb_nrf_err(sd_ble_gattc_write(conn, &wp));
    if (err) {
        c->gattc_op = BB_NRF_GATTC_IDLE;
        long_release(conn);
        return err;
    }
    s_long_off = piece;
    return 0;
}

/* Held-event stages for a failed Prepare Write: 0 nothing done, 1 the cancelling Execute
 * Write sent (its response then ends BB_NRF_GATTC_CANCELLING without an event). */
static int on_write_rsp(bb_nrf_conn_t *c, const ble_gattc_evt_t *e)
{
    if (c->gattc_op == BB_NRF_GATTC_CANCELLING) {
        c->gattc_op = BB_NRF_GATTC_IDLE; /* the server dropped its queue (or could not) */
        return 0;
    }
    if (c->gattc_op != BB_NRF_GATTC_WRITE && c->gattc_op != BB_NRF_GATTC_WRITE_LONG) {
        return 0;
    }
    if (e->gatt_status != BLE_GATT_STATUS_SUCCESS) {
        bool cancel = c->gattc_op == BB_NRF_GATTC_WRITE_LONG &&
                      e->params.write_rsp.write_op == BLE_GATT_OP_PREP_WRITE_REQ;
        if (cancel && bb_nrf_stage == 0) {
            /* Drop what the server queued so far; the done event reports the failure. */
            ble_gattc_write_params_t wp;
            memset(&wp, 0, sizeof wp);
            wp.write_op = BLE_GATT_OP_EXEC_WRITE_REQ;
            wp.flags = BLE_GATT_EXEC_WRITE_FLAG_PREPARED_CANCEL;
            cancel = sd_ble_gattc_write(c->handle, &wp) == NRF_SUCCESS;
            bb_nrf_stage = cancel ? 1 : 2;
        } else {
            cancel = cancel && bb_nrf_stage == 1;
        }
        int r = finish(c, bb_nrf_att_status(e->gatt_status));
        if (r == 0 && cancel) {
            /* Busy until the cancel's WRITE_RSP, so it cannot end a later procedure. */
            c->gattc_op = BB_NRF_GATTC_CANCELLING;
        }
        return r;
    }
    if (c->gattc_op == BB_NRF_GATTC_WRITE_LONG && e->params.write_rsp.write_op == BLE_GATT_OP_PREP_WRITE_REQ) {
        ble_gattc_write_params_t wp;
        memset(&wp, 0, sizeof wp);
        wp.handle = c->gattc_handle;
        if (s_long_off < s_long_len) {
            uint16_t piece = (uint16_t)(c->att_mtu - 5);
            uint16_t left = (uint16_t)(s_long_len - s_long_off);
            wp.write_op = BLE_GATT_OP_PREP_WRITE_REQ;
            wp.offset = s_long_off;
            wp.len = left < piece ? left : piece;
            wp.p_value = s_long_buf + s_long_off;
            if (sd_ble_gattc_write(c->handle, &wp) != NRF_SUCCESS) {
                return finish(c, BB_ATT_ERROR_UNLIKELY_ERROR);
            }
            s_long_off = (uint16_t)(s_long_off + wp.len);
            return 0;
        }
        wp.write_op = BLE_GATT_OP_EXEC_WRITE_REQ;
        wp.flags = BLE_GATT_EXEC_WRITE_FLAG_PREPARED_WRITE;
        if (sd_ble_gattc_write(c->handle, &wp) != NRF_SUCCESS) {
            return finish(c, BB_ATT_ERROR_UNLIKELY_ERROR);
        }
        return 0;
    }
    return finish(c, 0);
}

int bb_port_gattc_exchange_mtu(uint16_t conn)
{
    bb_nrf_conn_t *c = bb_nrf_conn(conn);
    if (!c) {
        return -BB_STATUS_ENOTCONN;
    }
    uint16_t ours = bb_nrf_mtu_ours(c);
    int err = bb_nrf_err(sd_ble_gattc_exchange_mtu_request(conn, ours));
    if (err == 0) {
        c->mtu_ours = ours;
    }
    return err;
}

int bb_nrf_gattc_on_event(const ble_evt_t *evt)
{
    const ble_gattc_evt_t *e = &evt->evt.gattc_evt;
    bb_nrf_conn_t *c = bb_nrf_conn(e->conn_handle);
    if (!c) {
        return 0;
    }
    switch (evt->header.evt_id) {
    case BLE_GATTC_EVT_PRIM_SRVC_DISC_RSP:
        return c->gattc_op == BB_NRF_GATTC_SERVICES ? on_discovery_rsp(c, e, evt->header.evt_id) : 0;
    case BLE_GATTC_EVT_CHAR_DISC_RSP:
        return c->gattc_op == BB_NRF_GATTC_CHARACTERISTICS ? on_discovery_rsp(c, e, evt->header.evt_id) : 0;
    case BLE_GATTC_EVT_ATTR_INFO_DISC_RSP:
        return c->gattc_op == BB_NRF_GATTC_DESCRIPTORS ? on_discovery_rsp(c, e, evt->header.evt_id) : 0;
    case BLE_GATTC_EVT_READ_RSP:
        return on_read_rsp(c, e);
    case BLE_GATTC_EVT_WRITE_RSP:
        return on_write_rsp(c, e);
    case BLE_GATTC_EVT_HVX: {
        const ble_gattc_evt_hvx_t *h = &e->params.hvx;
        int r;
        if (h->type == BLE_GATT_HVX_INDICATION) {
            r = bb_on_gattc_indicate(c->handle, h->handle, h->data, h->len);
            if (r == -BB_STATUS_ENOMEM) return r;
            /* Confirmed only once the core took it: the server waits meanwhile. */
            (void)sd_ble_gattc_hv_confirm(c->handle, h->handle);
            return 0;
        }
        r = bb_on_gattc_notify(c->handle, h->handle, h->data, h->len);
        return r == -BB_STATUS_ENOMEM ? r : 0;
    }
    case BLE_GATTC_EVT_EXCHANGE_MTU_RSP: {
        uint16_t ours = bb_nrf_mtu_ours(c);
        uint16_t theirs = e->params.exchange_mtu_rsp.server_rx_mtu;
        uint16_t eff = theirs < ours ? theirs : ours;
        if (eff < BLE_GATT_ATT_MTU_DEFAULT) eff = BLE_GATT_ATT_MTU_DEFAULT;
        if (bb_on_mtu_exchanged(c->handle, eff) == -BB_STATUS_ENOMEM) return -BB_STATUS_ENOMEM;
        c->att_mtu = eff;
        return 0;
    }
    case BLE_GATTC_EVT_TIMEOUT:
        /* ATT timeout: the bearer is dead; end the procedure, then the link. */
        if (c->gattc_op != BB_NRF_GATTC_IDLE && finish(c, BB_STATUS_ETIMEDOUT) == -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM;
        }
        c->gattc_op = BB_NRF_GATTC_IDLE;
        bb_nrf_att_timeout(c->handle);
        return 0;
    case BLE_GATTC_EVT_WRITE_CMD_TX_COMPLETE: {
        uint8_t n = e->params.write_cmd_tx_complete.count;
        c->wrcmd_inflight = n > c->wrcmd_inflight ? 0 : (uint8_t)(c->wrcmd_inflight - n);
        return 0;
    }
    default:
        return 0;
    }
}
