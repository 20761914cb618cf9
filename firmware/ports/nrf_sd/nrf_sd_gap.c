/*
 * nrf_sd port: GAP — advertising, scanning, connections and their parameters.
 */
#include <string.h>

#include "bb_nrf_sd.h"

/* Advertising data must stay untouched while the set uses it (sd_ble_gap_adv_set_configure). */
static uint8_t s_adv_data[BB_MAX_ADV_EXT];
static uint8_t s_resp_data[BB_MAX_ADV_EXT];
static uint8_t s_adv_handle = BLE_GAP_ADV_SET_HANDLE_NOT_SET;
static bool s_advertising;
static ble_gap_addr_t s_adv_peer;

/* Scan report buffer: the SoftDevice writes each report here and pauses until it is handed
 * back with sd_ble_gap_scan_start(NULL, ...). 255 bytes take extended reports. */
static uint8_t s_scan_buf[BLE_GAP_SCAN_BUFFER_EXTENDED_MIN];
static const ble_data_t s_scan_data = {s_scan_buf, sizeof s_scan_buf};
static bool s_scanning;
static bool s_scan_dedup;
static struct {
    uint8_t addr[BB_ADDR_LEN];
    uint8_t type;
    uint8_t adv_type;
} s_seen[BB_NRF_SD_SCAN_DEDUP];
static uint8_t s_seen_count, s_seen_next;

static bool s_connecting;
static bb_addr_t s_connect_peer;

/* Defaults for the 0 ("stack default") fields of bb_conn_params_t. */
#define DEFAULT_MIN_INTERVAL_1250US 12   /* 15 ms */
#define DEFAULT_MAX_INTERVAL_1250US 24   /* 30 ms */
#define DEFAULT_SUP_TIMEOUT_10MS 400     /* 4 s */

/* Scan timing of gap_connect's initiator, 0.625 ms units. */
#define CONNECT_SCAN_INTERVAL_625US 0x00A0  /* 100 ms */
#define CONNECT_SCAN_WINDOW_625US 0x0050    /* 50 ms */

void bb_nrf_gap_reset(void)
{
    s_adv_handle = BLE_GAP_ADV_SET_HANDLE_NOT_SET;
    s_advertising = false;
    s_scanning = false;
    s_connecting = false;
}

bool bb_nrf_gap_busy(void)
{
    return s_advertising || s_scanning || s_connecting;
}

static uint16_t us_to_625(uint32_t us)
{
    uint32_t v = (us + 312u) / 625u;
    return (uint16_t)(v > 0xFFFFu ? 0xFFFFu : v);
}

static uint16_t ms_to_10ms(uint32_t ms)
{
    if (ms == 0) {
        return 0;
    }
    uint32_t v = (ms + 9u) / 10u;
    return (uint16_t)(v > 0xFFFFu ? 0xFFFFu : v);
}

/* Connection parameters in SoftDevice units (interval 1.25 ms, supervision timeout 10 ms),
 * clamped to BLE_GAP_CP_LIMITS. A value the host gave that breaks the spec's rule
 * timeout > (1 + latency) * max_interval * 2 is passed on and refused (-EINVAL); a defaulted
 * timeout is raised to the smallest one that keeps the rule. */
static void conn_params_to_sd(ble_gap_conn_params_t *out, const bb_conn_params_t *in)
{
    uint32_t min = in->min_interval_us ? (in->min_interval_us + 625u) / 1250u : DEFAULT_MIN_INTERVAL_1250US;
    uint32_t max = in->max_interval_us ? (in->max_interval_us + 625u) / 1250u : DEFAULT_MAX_INTERVAL_1250US;
    if (min < BLE_GAP_CP_MIN_CONN_INTVL_MIN) min = BLE_GAP_CP_MIN_CONN_INTVL_MIN;
    if (max < min) max = min;
    if (max > BLE_GAP_CP_MAX_CONN_INTVL_MAX) max = BLE_GAP_CP_MAX_CONN_INTVL_MAX;
    if (min > max) min = max;
    uint32_t latency = in->latency > BLE_GAP_CP_SLAVE_LATENCY_MAX ? BLE_GAP_CP_SLAVE_LATENCY_MAX : in->latency;
    uint32_t sup;
    if (in->supervision_timeout_ms) {
        sup = ms_to_10ms(in->supervision_timeout_ms);
    } else {
        sup = DEFAULT_SUP_TIMEOUT_10MS;
        /* sup * 4 > (1 + latency) * max, both sides in 2.5 ms units */
        uint32_t least = (1u + latency) * max / 4u + 1u;
        if (sup < least) sup = least;
    }
    if (sup < BLE_GAP_CP_CONN_SUP_TIMEOUT_MIN) sup = BLE_GAP_CP_CONN_SUP_TIMEOUT_MIN;
    if (sup > BLE_GAP_CP_CONN_SUP_TIMEOUT_MAX) sup = BLE_GAP_CP_CONN_SUP_TIMEOUT_MAX;
    out->min_conn_interval = (uint16_t)min;
    out->max_conn_interval = (uint16_t)max;
    out->slave_latency = (uint16_t)latency;
    out->conn_sup_timeout = (uint16_t)sup;
}

/* nRF52840 radio steps (dBm); a request between steps gets the next lower one. */
static int8_t tx_power_step(int8_t dbm)
{
    static const int8_t steps[] = {8, 7, 6, 5, 4, 3, 2, 0, -4, -8, -12, -16, -20, -40};
    for (size_t i = 0; i < sizeof steps; i++) {
        if (dbm >= steps[i]) {
            return steps[i];
        }
    }
    return -40;
}

/* ------------------------------------------------------------------------------------------ */
/* Advertising                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int adv_type(const bb_adv_params_t *p, uint8_t *out)
{
    if (!p->extended) {
        if (p->directed) {
            if (!p->connectable) return -BB_STATUS_EINVAL; /* legacy directed is connectable */
            *out = BLE_GAP_ADV_TYPE_CONNECTABLE_NONSCANNABLE_DIRECTED;
        } else if (p->connectable) {
            *out = BLE_GAP_ADV_TYPE_CONNECTABLE_SCANNABLE_UNDIRECTED; /* ADV_IND is both */
        } else if (p->scannable) {
            *out = BLE_GAP_ADV_TYPE_NONCONNECTABLE_SCANNABLE_UNDIRECTED;
        } else {
            *out = BLE_GAP_ADV_TYPE_NONCONNECTABLE_NONSCANNABLE_UNDIRECTED;
        }
        return 0;
    }
    if (p->connectable && p->scannable) {
        return -BB_STATUS_EINVAL; /* extended advertising is connectable or scannable, not both */
    }
    if (p->connectable) {
        *out = p->directed ? BLE_GAP_ADV_TYPE_EXTENDED_CONNECTABLE_NONSCANNABLE_DIRECTED
                           : BLE_GAP_ADV_TYPE_EXTENDED_CONNECTABLE_NONSCANNABLE_UNDIRECTED;
    } else if (p->scannable) {
        *out = p->directed ? BLE_GAP_ADV_TYPE_EXTENDED_NONCONNECTABLE_SCANNABLE_DIRECTED
                           : BLE_GAP_ADV_TYPE_EXTENDED_NONCONNECTABLE_SCANNABLE_UNDIRECTED;
    } else {
        *out = p->directed ? BLE_GAP_ADV_TYPE_EXTENDED_NONCONNECTABLE_NONSCANNABLE_DIRECTED
                           : BLE_GAP_ADV_TYPE_EXTENDED_NONCONNECTABLE_NONSCANNABLE_UNDIRECTED;
    }
    return 0;
}

/* Which data the PDU type carries (ble_gap.h BLE_GAP_ADV_TYPES): directed legacy advertising
 * has no advertising data, extended scannable advertising only scan-response data, and only
 * scannable types take a scan response. */
static bool type_has_adv_data(uint8_t t)
{
    return t != BLE_GAP_ADV_TYPE_CONNECTABLE_NONSCANNABLE_DIRECTED &&
           t != BLE_GAP_ADV_TYPE_CONNECTABLE_NONSCANNABLE_DIRECTED_HIGH_DUTY_CYCLE &&
           t != BLE_GAP_ADV_TYPE_EXTENDED_NONCONNECTABLE_SCANNABLE_UNDIRECTED &&
           t != BLE_GAP_ADV_TYPE_EXTENDED_NONCONNECTABLE_SCANNABLE_DIRECTED;
}

static bool type_is_scannable(uint8_t t)
{
    return t == BLE_GAP_ADV_TYPE_CONNECTABLE_SCANNABLE_UNDIRECTED ||
           t == BLE_GAP_ADV_TYPE_NONCONNECTABLE_SCANNABLE_UNDIRECTED ||
           t == BLE_GAP_ADV_TYPE_EXTENDED_NONCONNECTABLE_SCANNABLE_UNDIRECTED ||
           t == BLE_GAP_ADV_TYPE_EXTENDED_NONCONNECTABLE_SCANNABLE_DIRECTED;
}

int bb_port_gap_advertise_start(const bb_adv_params_t *p)
{
    /* Data limits: 31 bytes legacy; extended up to BB_MAX_ADV_EXT (the stack takes 255), but
     * 238 when connectable (BLE_GAP_ADV_SET_DATA_SIZE_EXTENDED_CONNECTABLE_MAX_SUPPORTED). */
    uint16_t max = !p->extended ? BLE_GAP_ADV_SET_DATA_SIZE_MAX
                 : p->connectable ? BLE_GAP_ADV_SET_DATA_SIZE_EXTENDED_CONNECTABLE_MAX_SUPPORTED
                                  : BB_MAX_ADV_EXT;
    if (p->adv_len > max || p->resp_len > max) {
        return -BB_STATUS_E2BIG;
    }
    ble_gap_adv_params_t ap;
    memset(&ap, 0, sizeof ap);
    int err = adv_type(p, &ap.properties.type);
    if (err) {
        return err;
    }
    if (p->adv_len && !type_has_adv_data(ap.properties.type)) {
        return -BB_STATUS_EINVAL; /* directed legacy or extended scannable: no advertising data */
    }
    /* Parameters of a running set cannot change: stop, then configure afresh. */
    if (s_advertising) {
        (void)sd_ble_gap_adv_stop(s_adv_handle);
        s_advertising = false;
    }
    uint32_t interval = us_to_625(p->interval_us);
    if (interval < BLE_GAP_ADV_INTERVAL_MIN) interval = BLE_GAP_ADV_INTERVAL_MIN;
    if (interval > BLE_GAP_ADV_INTERVAL_MAX) interval = BLE_GAP_ADV_INTERVAL_MAX;
    ap.interval = interval;
    ap.duration = ms_to_10ms(p->timeout_ms);
    ap.filter_policy = BLE_GAP_ADV_FP_ANY;
    ap.primary_phy = BLE_GAP_PHY_1MBPS;
    ap.secondary_phy = BLE_GAP_PHY_1MBPS;
    if (p->directed) {
        bb_nrf_addr_to_sd(&s_adv_peer, &p->peer);
        ap.p_peer_addr = &s_adv_peer;
    }

    /* The stack reads these buffers while it advertises: static, and written only while the
     * set is stopped. */
    memcpy(s_adv_data, p->adv_data, p->adv_len);
    memcpy(s_resp_data, p->resp_data, p->resp_len);
    ble_gap_adv_data_t data;
    memset(&data, 0, sizeof data);
    if (p->adv_len) {
        data.adv_data.p_data = s_adv_data;
        data.adv_data.len = p->adv_len;
    }
    if (p->resp_len && type_is_scannable(ap.properties.type)) { /* legacy ADV_IND is scannable */
        data.scan_rsp_data.p_data = s_resp_data;
        data.scan_rsp_data.len = p->resp_len;
    }
    err = bb_nrf_err(sd_ble_gap_adv_set_configure(&s_adv_handle, &data, &ap));
    if (err) {
        return err;
    }
    int8_t dbm = p->has_tx_power ? p->tx_power : bb_nrf_cfg.tx_power;
    err = bb_nrf_err(sd_ble_gap_tx_power_set(BLE_GAP_TX_POWER_ROLE_ADV, s_adv_handle, tx_power_step(dbm)));
    if (err) {
        return err;
    }
    err = bb_nrf_err(sd_ble_gap_adv_start(s_adv_handle, BB_NRF_CONN_CFG_TAG));
    if (err == 0) {
        s_advertising = true;
    }
    return err;
}

int bb_port_gap_advertise_stop(void)
{
    if (!s_advertising) {
        return 0;
    }
    s_advertising = false;
    uint32_t e = sd_ble_gap_adv_stop(s_adv_handle);
    return e == NRF_ERROR_INVALID_STATE ? 0 : bb_nrf_err(e); /* ended on its own meanwhile */
}

/* ------------------------------------------------------------------------------------------ */
/* Scanning                                                                                      */
/* ------------------------------------------------------------------------------------------ */

int bb_port_gap_scan_start(const bb_scan_params_t *p)
{
    if (s_scanning) {
        (void)sd_ble_gap_scan_stop();
        s_scanning = false;
    }
    ble_gap_scan_params_t sp;
    memset(&sp, 0, sizeof sp);
    sp.extended = 1;
    sp.active = p->active ? 1 : 0;
    sp.filter_policy = BLE_GAP_SCAN_FP_ACCEPT_ALL;
    sp.scan_phys = BLE_GAP_PHY_1MBPS;
    uint16_t interval = us_to_625(p->interval_us);
    uint16_t window = us_to_625(p->window_us);
    if (interval < BLE_GAP_SCAN_INTERVAL_MIN) interval = BLE_GAP_SCAN_INTERVAL_MIN;
    if (window < BLE_GAP_SCAN_WINDOW_MIN) window = BLE_GAP_SCAN_WINDOW_MIN;
    if (window > interval) window = interval;
    sp.interval = interval;
    sp.window = window;
    sp.timeout = ms_to_10ms(p->duration_ms);
    s_scan_dedup = p->filter_duplicates;
    s_seen_count = 0;
    s_seen_next = 0;
    int err = bb_nrf_err(sd_ble_gap_scan_start(&sp, &s_scan_data));
    if (err == 0) {
        s_scanning = true;
    }
    return err;
}

int bb_port_gap_scan_stop(void)
{
    if (!s_scanning) {
        return 0;
    }
    s_scanning = false;
    (void)sd_ble_gap_scan_stop();
    /* The SoftDevice raises nothing for a stop; SCAN_DONE is promised after a stop too. */
    (void)bb_on_scan_done();
    return 0;
}

static uint8_t report_type(ble_gap_adv_report_type_t t)
{
    if (t.extended_pdu) return BB_ADV_TYPE_EXT_ADV;
    if (t.scan_response) return BB_ADV_TYPE_SCAN_RSP;
    if (t.connectable && t.directed) return BB_ADV_TYPE_ADV_DIRECT_IND;
    if (t.connectable) return BB_ADV_TYPE_ADV_IND;
    if (t.scannable) return BB_ADV_TYPE_ADV_SCAN_IND;
    return BB_ADV_TYPE_ADV_NONCONN_IND;
}

/* true when this advertiser/report kind was reported since the scan started. */
static bool seen_before(const bb_addr_t *a, uint8_t adv_type)
{
    for (uint8_t i = 0; i < s_seen_count; i++) {
        if (s_seen[i].type == a->type && s_seen[i].adv_type == adv_type &&
            memcmp(s_seen[i].addr, a->addr, BB_ADDR_LEN) == 0) {
            return true;
        }
    }
    memcpy(s_seen[s_seen_next].addr, a->addr, BB_ADDR_LEN);
    s_seen[s_seen_next].type = a->type;
    s_seen[s_seen_next].adv_type = adv_type;
    s_seen_next = (uint8_t)((s_seen_next + 1) % BB_NRF_SD_SCAN_DEDUP);
    if (s_seen_count < BB_NRF_SD_SCAN_DEDUP) {
        s_seen_count++;
    }
    return false;
}

static int on_adv_report(const ble_gap_evt_adv_report_t *r)
{
    /* MORE_DATA: the SoftDevice keeps collecting this event's chain and reports it again. */
    if (r->type.status == BLE_GAP_ADV_DATA_STATUS_INCOMPLETE_MORE_DATA) {
        return 0;
    }
    bb_addr_t addr;
    bb_nrf_addr_from_sd(&addr, &r->peer_addr);
    uint8_t kind = report_type(r->type);
    if (!(s_scan_dedup && seen_before(&addr, kind))) {
        /* Scan results are droppable: the core evicts old ones, so no hold-back is needed. */
        (void)bb_on_scan_result(&addr, kind, r->rssi, r->data.p_data, r->data.len);
    }
    if (s_scanning) {
        /* The scanner pauses after each complete report until the buffer is handed back. */
        (void)sd_ble_gap_scan_start(NULL, &s_scan_data);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                   */
/* ------------------------------------------------------------------------------------------ */

int bb_port_gap_connect(const bb_connect_params_t *p)
{
    if (s_connecting) {
        return -BB_STATUS_EALREADY;
    }
    ble_gap_addr_t peer;
    bb_nrf_addr_to_sd(&peer, &p->peer);
    ble_gap_scan_params_t sp;
    memset(&sp, 0, sizeof sp);
    sp.extended = 1; /* also connect to a peer that advertises with extended PDUs only */
    sp.filter_policy = BLE_GAP_SCAN_FP_ACCEPT_ALL;
    sp.scan_phys = BLE_GAP_PHY_1MBPS;
    sp.interval = CONNECT_SCAN_INTERVAL_625US;
    sp.window = CONNECT_SCAN_WINDOW_625US;
    sp.timeout = ms_to_10ms(p->scan_duration_ms); /* 10 ms units, 0: until cancelled */
    ble_gap_conn_params_t cp;
    conn_params_to_sd(&cp, &p->conn);
    bool was_scanning = s_scanning;
    int err = bb_nrf_err(sd_ble_gap_connect(&peer, &sp, &cp, BB_NRF_CONN_CFG_TAG));
    if (was_scanning) {
        /* ble_gap.h: sd_ble_gap_connect stops a running scan, even when it returns an error. */
        s_scanning = false;
        (void)bb_on_scan_done();
    }
    if (err) {
        return err;
    }
    s_connecting = true;
    s_connect_peer = p->peer;
    return 0;
}

int bb_port_gap_connect_cancel(void)
{
    if (!s_connecting) {
        return -BB_STATUS_ENOENT;
    }
    int err = bb_nrf_err(sd_ble_gap_connect_cancel());
    if (err) {
        return err;
    }
    s_connecting = false;
    /* No SoftDevice event follows a cancel; the protocol promises this one. */
    (void)bb_on_peripheral_disconnect(BB_CONN_NONE, &s_connect_peer,
                                      BLE_HCI_STATUS_CODE_UNKNOWN_CONNECTION_IDENTIFIER);
    return 0;
}

int bb_port_gap_disconnect(uint16_t conn)
{
    if (!bb_nrf_conn(conn)) {
        return -BB_STATUS_ENOTCONN;
    }
    return bb_nrf_err(sd_ble_gap_disconnect(conn, BLE_HCI_REMOTE_USER_TERMINATED_CONNECTION));
}

int bb_port_gap_conn_update(uint16_t conn, const bb_conn_params_t *p)
{
    if (!bb_nrf_conn(conn)) {
        return -BB_STATUS_ENOTCONN;
    }
    ble_gap_conn_params_t cp;
    conn_params_to_sd(&cp, p);
    return bb_nrf_err(sd_ble_gap_conn_param_update(conn, &cp));
}

static bb_nrf_conn_t *conn_add(const ble_gap_evt_t *g)
{
    bb_nrf_conn_t *c = bb_nrf_conn(g->conn_handle);
    if (c) {
        return c; /* a held CONNECTED event handled again */
    }
    for (size_t i = 0; i < BB_NRF_SD_MAX_CONNECTIONS; i++) {
        if (!bb_nrf_conns[i].used) {
            c = &bb_nrf_conns[i];
            memset(c, 0, sizeof *c);
            c->used = true;
            c->handle = g->conn_handle;
            c->role = g->params.connected.role;
            c->att_mtu = BLE_GATT_ATT_MTU_DEFAULT;
            bb_nrf_addr_from_sd(&c->peer, &g->params.connected.peer_addr);
            BLE_GAP_CONN_SEC_MODE_SET_OPEN(&c->sec_mode);
            return c;
        }
    }
    return NULL;
}

static int on_connected(const ble_gap_evt_t *g)
{
    bb_nrf_conn_t *c = conn_add(g);
    if (!c) {
        /* More links than this port tracks (cannot happen with matching configuration).
         * sd_ble_gap_disconnect takes only these two HCI reasons. */
        (void)sd_ble_gap_disconnect(g->conn_handle, BLE_HCI_REMOTE_USER_TERMINATED_CONNECTION);
        return 0;
    }
    int r;
    if (c->role == BLE_GAP_ROLE_PERIPH) {
        if (bb_nrf_stage == 0) {
            r = bb_on_central_connect(c->handle, &c->peer);
            if (r == -BB_STATUS_ENOMEM) return r;
            bb_nrf_stage = 1;
        }
        if (bb_nrf_stage == 1 && s_advertising) {
            /* A connection ends connectable advertising (no ADV_SET_TERMINATED for it). */
            r = bb_on_advertise_done(1);
            if (r == -BB_STATUS_ENOMEM) return r;
            s_advertising = false;
        }
    } else {
        r = bb_on_peripheral_connect(c->handle, &c->peer);
        if (r == -BB_STATUS_ENOMEM) return r;
        s_connecting = false;
    }
    /* Tell the SoftDevice no CCCD values are stored for this link (all notifications off). */
    (void)sd_ble_gatts_sys_attr_set(c->handle, NULL, 0, 0);
    return 0;
}

static int on_disconnected(const ble_gap_evt_t *g)
{
    bb_nrf_conn_t *c = bb_nrf_conn(g->conn_handle);
    if (!c) {
        return 0;
    }
    int r;
    if (bb_nrf_stage == 0) {
        if (c->indicate_handle) {
            r = bb_on_gatts_indicate_done(c->handle, c->indicate_handle, BB_STATUS_ENOTCONN);
            if (r == -BB_STATUS_ENOMEM) return r;
            c->indicate_handle = 0;
        }
        bb_nrf_stage = 1;
    }
    if (bb_nrf_stage == 1) {
        bb_nrf_gattc_conn_closed(c); /* reports the running client procedure as failed */
        if (c->gattc_op != BB_NRF_GATTC_IDLE) return -BB_STATUS_ENOMEM;
        bb_nrf_stage = 2;
    }
    if (bb_nrf_stage == 2) {
        /* Channels still open are reported closed before the link. */
        if (bb_nrf_l2cap_conn_closed(c->handle) == -BB_STATUS_ENOMEM) return -BB_STATUS_ENOMEM;
        bb_nrf_stage = 3;
    }
    if (c->role == BLE_GAP_ROLE_PERIPH) {
        r = bb_on_central_disconnect(c->handle, &c->peer, g->params.disconnected.reason);
    } else {
        r = bb_on_peripheral_disconnect(c->handle, &c->peer, g->params.disconnected.reason);
    }
    if (r == -BB_STATUS_ENOMEM) return r;
    bb_nrf_gatts_conn_closed(c->handle);
    c->used = false;
    return 0;
}

static int on_timeout(const ble_gap_evt_t *g)
{
    int r = 0;
    switch (g->params.timeout.src) {
    case BLE_GAP_TIMEOUT_SRC_SCAN:
        if (s_scanning) {
            r = bb_on_scan_done();
            if (r != -BB_STATUS_ENOMEM) s_scanning = false;
        }
        break;
    case BLE_GAP_TIMEOUT_SRC_CONN:
        r = bb_on_peripheral_disconnect(BB_CONN_NONE, &s_connect_peer,
                                        BLE_HCI_STATUS_CODE_UNKNOWN_CONNECTION_IDENTIFIER);
        if (r != -BB_STATUS_ENOMEM) s_connecting = false;
        break;
    default:
        break;
    }
    return r == -BB_STATUS_ENOMEM ? r : 0;
}

int bb_nrf_gap_on_event(const ble_evt_t *evt)
{
    const ble_gap_evt_t *g = &evt->evt.gap_evt;
    switch (evt->header.evt_id) {
    case BLE_GAP_EVT_CONNECTED:
        return on_connected(g);
    case BLE_GAP_EVT_DISCONNECTED:
        return on_disconnected(g);
    case BLE_GAP_EVT_TIMEOUT:
        return on_timeout(g);
    case BLE_GAP_EVT_ADV_REPORT:
        return on_adv_report(&g->params.adv_report);
    case BLE_GAP_EVT_ADV_SET_TERMINATED: {
        if (!s_advertising) return 0;
        int r = bb_on_advertise_done(0); /* timeout or event count reached */
        if (r == -BB_STATUS_ENOMEM) return r;
        s_advertising = false;
        return 0;
    }
    case BLE_GAP_EVT_CONN_PARAM_UPDATE: {
        const ble_gap_conn_params_t *p = &g->params.conn_param_update.conn_params;
        int r = bb_on_connection_update(g->conn_handle, p->max_conn_interval, p->slave_latency,
                                        p->conn_sup_timeout, 0);
        return r == -BB_STATUS_ENOMEM ? r : 0;
    }
    case BLE_GAP_EVT_CONN_PARAM_UPDATE_REQUEST:
        /* As central: accept what the peripheral asks for; parameters the stack refuses are
         * rejected (NULL) so the peripheral's request gets an answer either way. */
        if (sd_ble_gap_conn_param_update(g->conn_handle, &g->params.conn_param_update_request.conn_params) !=
            NRF_SUCCESS) {
            (void)sd_ble_gap_conn_param_update(g->conn_handle, NULL);
        }
        return 0;
    case BLE_GAP_EVT_PHY_UPDATE_REQUEST: {
        const ble_gap_phys_t phys = {BLE_GAP_PHY_AUTO, BLE_GAP_PHY_AUTO};
        (void)sd_ble_gap_phy_update(g->conn_handle, &phys);
        return 0;
    }
    case BLE_GAP_EVT_DATA_LENGTH_UPDATE_REQUEST:
        /* NULL: the largest data length the configuration allows. Should the event length not
         * hold it, answer with the 27-byte minimum rather than leave the request open. */
        if (sd_ble_gap_data_length_update(g->conn_handle, NULL, NULL) != NRF_SUCCESS) {
            const ble_gap_data_length_params_t dl = {27, 27, BLE_GAP_DATA_LENGTH_AUTO, BLE_GAP_DATA_LENGTH_AUTO};
            (void)sd_ble_gap_data_length_update(g->conn_handle, &dl, NULL);
        }
        return 0;
    default:
        return 0;
    }
}
