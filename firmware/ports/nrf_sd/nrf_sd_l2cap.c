/*
 * nrf_sd port: L2CAP LE credit-based connection-oriented channels.
 *
 * Each channel owns one RX SDU buffer, posted to the SoftDevice (sd_ble_l2cap_ch_rx) and posted
 * again only after the core took the received SDU: until then the SoftDevice gives the peer no
 * credits, which is the flow control. Each channel owns one TX SDU buffer too, so a send is
 * taken and the channel reports itself stalled until BLE_L2CAP_EVT_CH_TX returns the buffer;
 * credits are counted as ble_l2cap.h describes (ceil((len + 2) / tx_mps) per SDU).
 */
#include <string.h>

#include "bb_nrf_sd.h"

typedef struct {
    bool used;
    bool local;           /* we asked for it (l2cap_connect): the host waits for its outcome */
    bool open;            /* setup completed */
    bool tx_busy;         /* tx buffer handed to the SoftDevice */
    bool stalled;         /* the core was told "stalled": owes it a SEND_READY */
    uint16_t conn, cid, psm;
    uint16_t our_mtu, peer_mtu, tx_mps;
    int32_t credits;
    uint8_t rx[BB_MAX_L2CAP_SDU];
    uint8_t tx[BB_MAX_L2CAP_SDU];
} l2cap_ch_t;

static l2cap_ch_t s_ch[BB_NRF_SD_L2CAP_CHANNELS];
static uint16_t s_listen_psm;   /* 0: not listening */
static uint16_t s_listen_mtu;

void bb_nrf_l2cap_reset(void)
{
    memset(s_ch, 0, sizeof s_ch);
    s_listen_psm = 0;
}

static l2cap_ch_t *ch_find(uint16_t conn, uint16_t cid)
{
    for (size_t i = 0; i < BB_NRF_SD_L2CAP_CHANNELS; i++) {
        if (s_ch[i].used && s_ch[i].conn == conn && s_ch[i].cid == cid) {
            return &s_ch[i];
        }
    }
    return NULL;
}

static l2cap_ch_t *ch_alloc(void)
{
    for (size_t i = 0; i < BB_NRF_SD_L2CAP_CHANNELS; i++) {
        if (!s_ch[i].used) {
            l2cap_ch_t *ch = &s_ch[i];
            ch->used = true;
            ch->local = ch->open = ch->tx_busy = ch->stalled = false;
            ch->credits = 0;
            return ch;
        }
    }
    return NULL;
}

static uint16_t clamp_mtu(uint16_t mtu)
{
    if (mtu < BLE_L2CAP_MTU_MIN) return BLE_L2CAP_MTU_MIN;
    return mtu > BB_MAX_L2CAP_SDU ? BB_MAX_L2CAP_SDU : mtu;
}

static void setup_params(ble_l2cap_ch_setup_params_t *p, l2cap_ch_t *ch, uint16_t psm, uint16_t status)
{
    memset(p, 0, sizeof *p);
    p->rx_params.rx_mtu = ch->our_mtu;
    p->rx_params.rx_mps = BB_NRF_L2CAP_MPS;
    p->rx_params.sdu_buf.p_data = ch->rx;
    p->rx_params.sdu_buf.len = ch->our_mtu;
    p->le_psm = psm;
    p->status = status;
}

int bb_port_l2cap_listen(uint16_t psm, uint16_t mtu)
{
    s_listen_psm = psm;
    s_listen_mtu = clamp_mtu(mtu);
    return 0;
}

int bb_port_l2cap_connect(uint16_t conn, uint16_t psm, uint16_t mtu)
{
    if (!bb_nrf_conn(conn)) {
        return -BB_STATUS_ENOTCONN;
    }
    l2cap_ch_t *ch = ch_alloc();
    if (!ch) {
        return -BB_STATUS_ENOMEM;
    }
    ch->conn = conn;
    ch->psm = psm;
    ch->local = true;
    ch->our_mtu = clamp_mtu(mtu);
    ble_l2cap_ch_setup_params_t p;
    setup_params(&p, ch, psm, BLE_L2CAP_CH_STATUS_CODE_SUCCESS);
    uint16_t cid = BLE_L2CAP_CID_INVALID;
    int err = bb_nrf_err(sd_ble_l2cap_ch_setup(conn, &cid, &p));
    if (err) {
        ch->used = false;
        return err;
    }
    ch->cid = cid;
    return 0;
}

int bb_port_l2cap_send(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len)
{
    l2cap_ch_t *ch = ch_find(conn, cid);
    if (!ch || !ch->open) {
        return -BB_STATUS_ENOTCONN;
    }
    if (len > ch->peer_mtu) {
        return -BB_STATUS_E2BIG;
    }
    if (ch->tx_busy) {
        ch->stalled = true;
        return -BB_STATUS_EAGAIN;
    }
    memcpy(ch->tx, data, len);
    ble_data_t sdu = {ch->tx, len};
    int err = bb_nrf_err(sd_ble_l2cap_ch_tx(conn, cid, &sdu));
    if (err) {
        return err;
    }
    ch->tx_busy = true;
    ch->credits -= (int32_t)((len + 2u + ch->tx_mps - 1u) / ch->tx_mps);
    ch->stalled = true; /* the one TX buffer is in flight: SEND_READY when it comes back */
    return 1;
}

int bb_port_l2cap_disconnect(uint16_t conn, uint16_t cid)
{
    if (!ch_find(conn, cid)) {
        return -BB_STATUS_ENOTCONN;
    }
    return bb_nrf_err(sd_ble_l2cap_ch_release(conn, cid));
}

/* Refuse a peer's channel request. The RX parameters are not used for a refusal but are kept
 * within their documented minimums. */
static void refuse(uint16_t conn, uint16_t cid, uint16_t status)
{
    ble_l2cap_ch_setup_params_t p;
    memset(&p, 0, sizeof p);
    p.rx_params.rx_mtu = BLE_L2CAP_MTU_MIN;
    p.rx_params.rx_mps = BLE_L2CAP_MPS_MIN;
    p.status = status;
    (void)sd_ble_l2cap_ch_setup(conn, &cid, &p);
}

void bb_nrf_l2cap_answer(uint32_t port_ref, const bb_answer_t *answer)
{
    uint16_t conn = (uint16_t)(port_ref >> 16);
    uint16_t cid = (uint16_t)port_ref;
    l2cap_ch_t *ch = ch_find(conn, cid);
    if (!ch) {
        return;
    }
    uint16_t status = (answer->timed_out || answer->u == 0) ? BLE_L2CAP_CH_STATUS_CODE_SUCCESS
                                                           : (uint16_t)answer->u;
    if (status != BLE_L2CAP_CH_STATUS_CODE_SUCCESS) {
        refuse(conn, cid, status);
        ch->used = false;
        return;
    }
    ble_l2cap_ch_setup_params_t p;
    setup_params(&p, ch, ch->psm, status);
    uint16_t local = cid;
    if (sd_ble_l2cap_ch_setup(conn, &local, &p) != NRF_SUCCESS) {
        /* The request stays open after an error: answer it with a refusal. */
        refuse(conn, cid, BLE_L2CAP_CH_STATUS_CODE_NO_RESOURCES);
        ch->used = false;
    }
}

static int on_setup_request(const ble_l2cap_evt_t *e)
{
    const ble_l2cap_evt_ch_setup_request_t *rq = &e->params.ch_setup_request;
    l2cap_ch_t *ch = ch_find(e->conn_handle, e->local_cid);
    if (!ch) {
        ch = (s_listen_psm == rq->le_psm) ? ch_alloc() : NULL;
        if (!ch) {
            refuse(e->conn_handle, e->local_cid,
                   s_listen_psm == rq->le_psm ? BLE_L2CAP_CH_STATUS_CODE_NO_RESOURCES
                                              : BLE_L2CAP_CH_STATUS_CODE_LE_PSM_NOT_SUPPORTED);
            return 0;
        }
        ch->conn = e->conn_handle;
        ch->cid = e->local_cid;
        ch->psm = rq->le_psm;
        ch->our_mtu = s_listen_mtu;
        ch->peer_mtu = rq->tx_params.tx_mtu;
        ch->tx_mps = rq->tx_params.tx_mps;
        ch->credits = rq->tx_params.credits;
    }
    uint32_t ref = ((uint32_t)e->conn_handle << 16) | e->local_cid;
    if (bb_on_question_l2cap_accept(ref, e->conn_handle, e->local_cid, ch->psm, ch->our_mtu, ch->peer_mtu) != 0) {
        const bb_answer_t accept = {true, false, 0, NULL, 0}; /* no question slot: accept */
        bb_nrf_l2cap_answer(ref, &accept);
    }
    return 0;
}

static int send_ready_if_owed(l2cap_ch_t *ch)
{
    if (ch->stalled && !ch->tx_busy && ch->credits > 0) {
        if (bb_on_l2cap_send_ready(ch->conn, ch->cid, 0) == -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM;
        }
        ch->stalled = false;
    }
    return 0;
}

/* Open channels end with status 0, as a release does; an l2cap_connect still waiting for its
 * setup ends with ENOTCONN. A channel the peer asked for and the host has not yet accepted was
 * never reported: it just goes (the answer then finds no channel). */
int bb_nrf_l2cap_conn_closed(uint16_t conn)
{
    for (size_t i = 0; i < BB_NRF_SD_L2CAP_CHANNELS; i++) {
        l2cap_ch_t *ch = &s_ch[i];
        if (!ch->used || ch->conn != conn) {
            continue;
        }
        if (ch->open || ch->local) {
            uint16_t status = ch->open ? 0 : BB_STATUS_ENOTCONN;
            if (bb_on_l2cap_disconnect(conn, ch->cid, ch->psm, status) == -BB_STATUS_ENOMEM) {
                return -BB_STATUS_ENOMEM;
            }
        }
        ch->used = false;
    }
    return 0;
}

int bb_nrf_l2cap_on_event(const ble_evt_t *evt)
{
    const ble_l2cap_evt_t *e = &evt->evt.l2cap_evt;
    if (evt->header.evt_id == BLE_L2CAP_EVT_CH_SETUP_REQUEST) {
        return on_setup_request(e);
    }
    l2cap_ch_t *ch = ch_find(e->conn_handle, e->local_cid);
    if (!ch) {
        return 0;
    }
    switch (evt->header.evt_id) {
    case BLE_L2CAP_EVT_CH_SETUP:
        ch->peer_mtu = e->params.ch_setup.tx_params.tx_mtu;
        ch->tx_mps = e->params.ch_setup.tx_params.tx_mps;
        ch->credits = e->params.ch_setup.tx_params.credits;
        if (bb_on_l2cap_connect(ch->conn, ch->cid, ch->psm, ch->our_mtu, ch->peer_mtu) == -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM;
        }
        ch->open = true;
        return 0;
    case BLE_L2CAP_EVT_CH_SETUP_REFUSED:
        if (bb_on_l2cap_disconnect(ch->conn, ch->cid, ch->psm, e->params.ch_setup_refused.status) ==
            -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM;
        }
        ch->used = false;
        return 0;
    case BLE_L2CAP_EVT_CH_RELEASED:
        if (ch->open && bb_on_l2cap_disconnect(ch->conn, ch->cid, ch->psm, 0) == -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM;
        }
        ch->used = false;
        return 0;
    case BLE_L2CAP_EVT_CH_RX: {
        if (bb_on_l2cap_recv(ch->conn, ch->cid, e->params.rx.sdu_buf.p_data, e->params.rx.sdu_len) ==
            -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM; /* buffer not re-posted: the peer gets no credits */
        }
        ble_data_t buf = {ch->rx, ch->our_mtu};
        (void)sd_ble_l2cap_ch_rx(ch->conn, ch->cid, &buf);
        return 0;
    }
    case BLE_L2CAP_EVT_CH_TX:
        ch->tx_busy = false;
        return send_ready_if_owed(ch);
    case BLE_L2CAP_EVT_CH_CREDIT:
        ch->credits += e->params.credit.credits;
        return send_ready_if_owed(ch);
    case BLE_L2CAP_EVT_CH_SDU_BUF_RELEASED:
        if (e->params.ch_sdu_buf_released.sdu_buf.p_data == ch->tx) {
            ch->tx_busy = false;
        }
        return 0;
    default:
        return 0;
    }
}
