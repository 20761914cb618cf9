/*
 * nrf_sd port: GATT server.
 *
 * Values live in SoftDevice memory (BLE_GATTS_VLOC_STACK), not in the core's pool
 * (BLE_GATTS_VLOC_USER), because the core stays the owner of its pool: with VLOC_USER the
 * SoftDevice would write peer data into the pool from its own interrupt, under the core's feet,
 * and before the core applies its rules (append mode of gatts_set_buffer, truncation). With
 * VLOC_STACK a peer write lands in the SoftDevice copy, the core gets it by bb_on_gatts_write,
 * and a host write reaches the SoftDevice by bb_port_gatts_value_changed -> value_set. The cost
 * is a second copy inside the attribute table (BB_NRF_SD_ATTR_TAB_SIZE).
 *
 * Every readable attribute is added with read authorisation (rd_auth): each peer read comes to
 * the port, which answers with the core's current value (so append-mode and truncated values
 * read back as the core holds them) and asks the host first when the attribute is flagged
 * READ_AUTHORIZED or config READ_REQUEST is on. READ_REQUEST can change at any time, and the
 * SoftDevice fixes rd_auth when the attribute is added, hence rd_auth on all of them.
 */
#include <string.h>

#include "bb_nrf_sd.h"

static bb_nrf_attr_t s_attrs[BB_MAX_CHRS + BB_MAX_DSCS];
static uint16_t s_attr_count;
static bool s_registered;

/* Peer long writes (Prepare Write queue) are collected here: entries of handle u16, offset u16,
 * len u16, data, terminated by handle 0 (format set by the SoftDevice, see ble_gatts.h). One
 * link owns the block at a time; other links are refused with Prepare Queue Full. */
static uint8_t s_qw_mem[BB_NRF_SD_QUEUED_WRITE_BYTES];
static uint16_t s_qw_owner = BLE_CONN_HANDLE_INVALID;
static uint16_t s_qw_pos;       /* bytes of the queue already reported (held-event progress) */

void bb_nrf_gatts_reset(void)
{
    s_attr_count = 0;
    s_registered = false;
    s_qw_owner = BLE_CONN_HANDLE_INVALID;
    s_qw_pos = 0;
}

bool bb_nrf_gatts_registered(void)
{
    return s_registered;
}

void bb_nrf_gatts_conn_closed(uint16_t conn)
{
    /* Released here too in case no BLE_EVT_USER_MEM_RELEASE comes for a link that dropped in
     * the middle of a queued write; a new link cannot ask for the block before its CONNECTED. */
    if (s_qw_owner == conn) {
        s_qw_owner = BLE_CONN_HANDLE_INVALID;
        s_qw_pos = 0;
    }
}

static const bb_nrf_attr_t *attr_find(uint16_t handle)
{
    for (uint16_t i = 0; i < s_attr_count; i++) {
        if (s_attrs[i].handle == handle) {
            return &s_attrs[i];
        }
    }
    return NULL;
}

static const bb_nrf_attr_t *chr_by_value(uint16_t value_handle)
{
    const bb_nrf_attr_t *a = attr_find(value_handle);
    return (a != NULL && a->chr) ? a : NULL;
}

static bool is_cccd(uint16_t handle)
{
    for (uint16_t i = 0; i < s_attr_count; i++) {
        if (s_attrs[i].cccd_handle == handle) {
            return true;
        }
    }
    return false;
}

/* A peer write the core is told of: only the values and descriptors of the host's table. Not
 * CCCDs (subscriptions stay the SoftDevice's, read back when notifying), and not the
 * SoftDevice's own attributes: the Service Changed characteristic and its CCCD
 * (BLE_GATTS_CFG_SERVICE_CHANGED), which phones write on every connection, and the GAP
 * service's device name when its write permission allows. */
static bool write_reported(uint16_t handle)
{
    return attr_find(handle) != NULL && !is_cccd(handle);
}

static int attr_record(uint16_t handle, uint16_t cccd_handle, uint32_t flags, bool chr)
{
    if (s_attr_count >= sizeof s_attrs / sizeof s_attrs[0]) {
        return -BB_STATUS_ENOMEM;
    }
    s_attrs[s_attr_count].handle = handle;
    s_attrs[s_attr_count].cccd_handle = cccd_handle;
    s_attrs[s_attr_count].flags = flags;
    s_attrs[s_attr_count].chr = chr;
    s_attr_count++;
    return 0;
}

/* Security mode 1 levels: 1 open, 2 encrypted, 3 encrypted+MITM, 4 LESC encrypted+MITM. */
static void perm(ble_gap_conn_sec_mode_t *m, bool allowed, bool enc, bool authn, bool lesc)
{
    if (!allowed) {
        BLE_GAP_CONN_SEC_MODE_SET_NO_ACCESS(m);
    } else if (lesc) {
        BLE_GAP_CONN_SEC_MODE_SET_LESC_ENC_WITH_MITM(m);
    } else if (authn) {
        BLE_GAP_CONN_SEC_MODE_SET_ENC_WITH_MITM(m);
    } else if (enc) {
        BLE_GAP_CONN_SEC_MODE_SET_ENC_NO_MITM(m);
    } else {
        BLE_GAP_CONN_SEC_MODE_SET_OPEN(m);
    }
}

static void attr_md(ble_gatts_attr_md_t *md, uint32_t f)
{
    memset(md, 0, sizeof *md);
    perm(&md->read_perm, (f & BB_FLAG_READ) != 0, (f & BB_FLAG_READ_ENCRYPTED) != 0,
         (f & BB_FLAG_READ_AUTHENTICATED) != 0, (f & BB_FLAG_READ_LESC) != 0);
    perm(&md->write_perm,
         (f & (BB_FLAG_WRITE | BB_FLAG_WRITE_NO_RESPONSE | BB_FLAG_AUTHENTICATED_SIGNED_WRITE)) != 0,
         (f & BB_FLAG_WRITE_ENCRYPTED) != 0, (f & BB_FLAG_WRITE_AUTHENTICATED) != 0,
         (f & BB_FLAG_WRITE_LESC) != 0);
    md->vloc = BLE_GATTS_VLOC_STACK;
    md->vlen = (f & BB_FLAG_FIXED_LENGTH) ? 0 : 1;
    md->rd_auth = (f & BB_FLAG_READ) ? 1 : 0; /* see the file comment */
    md->wr_auth = 0; /* the protocol has no write authorisation question */
}

/* Attribute buffer in the SoftDevice (bytes): at least the initial value, at most the stack's
 * limit for fixed (510) or variable (512) length values. */
static uint16_t value_max(uint16_t max_len, uint16_t init_len, bool fixed)
{
    uint16_t cap = fixed ? BLE_GATTS_FIX_ATTR_LEN_MAX : BLE_GATTS_VAR_ATTR_LEN_MAX;
    uint16_t m = max_len ? max_len : BB_DEFAULT_ATTR_LEN;
    if (m < init_len) m = init_len;
    return m > cap ? cap : m;
}

static int add_chr(uint16_t svc_handle, bb_gatts_chr_t *ch)
{
    ble_uuid_t uuid;
    int err = bb_nrf_uuid_to_sd(&uuid, &ch->uuid);
    if (err) return err;

    uint32_t f = ch->flags;
    ble_gatts_char_md_t cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.char_props.broadcast = (f & BB_FLAG_BROADCAST) ? 1 : 0;
    cmd.char_props.read = (f & BB_FLAG_READ) ? 1 : 0;
    cmd.char_props.write_wo_resp = (f & BB_FLAG_WRITE_NO_RESPONSE) ? 1 : 0;
    cmd.char_props.write = (f & BB_FLAG_WRITE) ? 1 : 0;
    cmd.char_props.notify = (f & BB_FLAG_NOTIFY) ? 1 : 0;
    cmd.char_props.indicate = (f & BB_FLAG_INDICATE) ? 1 : 0;
    cmd.char_props.auth_signed_wr = (f & BB_FLAG_AUTHENTICATED_SIGNED_WRITE) ? 1 : 0;

    /* CCCD: readable by anyone (the stack requires it), writable at the security any access to
     * the value needs (read or write), as NimBLE does (ble_gatts_register_clt_cfg_dsc): a peer
     * subscribes only over a link on which it could access the value. */
    ble_gatts_attr_md_t cccd_md;
    memset(&cccd_md, 0, sizeof cccd_md);
    BLE_GAP_CONN_SEC_MODE_SET_OPEN(&cccd_md.read_perm);
    perm(&cccd_md.write_perm, true, (f & (BB_FLAG_READ_ENCRYPTED | BB_FLAG_WRITE_ENCRYPTED)) != 0,
         (f & (BB_FLAG_READ_AUTHENTICATED | BB_FLAG_WRITE_AUTHENTICATED)) != 0,
         (f & (BB_FLAG_READ_LESC | BB_FLAG_WRITE_LESC)) != 0);
    cccd_md.vloc = BLE_GATTS_VLOC_STACK;
    if (f & (BB_FLAG_NOTIFY | BB_FLAG_INDICATE)) {
        cmd.p_cccd_md = &cccd_md;
    }

    ble_gatts_attr_md_t vmd;
    attr_md(&vmd, f);
    ble_gatts_attr_t val;
    memset(&val, 0, sizeof val);
    val.p_uuid = &uuid;
    val.p_attr_md = &vmd;
    val.max_len = value_max(ch->max_len, ch->init_len, !vmd.vlen);
    val.init_len = ch->init_len > val.max_len ? val.max_len : ch->init_len;
    if (!vmd.vlen) {
        val.init_len = val.max_len; /* fixed length: the whole buffer is the value */
    }
    /* A fixed-length value is max_len bytes from the start: pad the initial bytes with zeros.
     * VLOC_STACK copies the value during the call, so one static buffer serves every add. */
    static uint8_t pad[BLE_GATTS_VAR_ATTR_LEN_MAX];
    val.p_value = (uint8_t *)(uintptr_t)ch->init;
    if (val.init_len > ch->init_len) {
        memset(pad, 0, val.init_len);
        if (ch->init_len) memcpy(pad, ch->init, ch->init_len);
        val.p_value = pad;
    }

    ble_gatts_char_handles_t h;
    err = bb_nrf_err(sd_ble_gatts_characteristic_add(svc_handle, &cmd, &val, &h));
    if (err) return err;
    ch->value_handle = h.value_handle;
    ch->decl_handle = (uint16_t)(h.value_handle - 1); /* declaration precedes the value */
    ch->cccd_handle = h.cccd_handle;
    err = attr_record(h.value_handle, h.cccd_handle, f, true);
    if (err) return err;

    for (uint8_t i = 0; i < ch->dsc_count; i++) {
        bb_gatts_dsc_t *d = &ch->dscs[i];
        if (d->uuid.len == 2 && d->uuid.bytes[0] == 0x02 && d->uuid.bytes[1] == 0x29) {
            /* The CCCD is the SoftDevice's own (added with the characteristic). */
            d->handle = h.cccd_handle;
            continue;
        }
        ble_uuid_t du;
        err = bb_nrf_uuid_to_sd(&du, &d->uuid);
        if (err) return err;
        ble_gatts_attr_md_t dmd;
        attr_md(&dmd, d->flags);
        ble_gatts_attr_t dv;
        memset(&dv, 0, sizeof dv);
        dv.p_uuid = &du;
        dv.p_attr_md = &dmd;
        dv.max_len = value_max(d->max_len, d->init_len, !dmd.vlen);
        dv.init_len = d->init_len > dv.max_len ? dv.max_len : d->init_len;
        dv.p_value = (uint8_t *)(uintptr_t)d->init;
        if (!dmd.vlen && dv.init_len < dv.max_len) {
            dmd.vlen = 1; /* nothing to fill a fixed descriptor with: keep the given bytes */
        }
        err = bb_nrf_err(sd_ble_gatts_descriptor_add(BLE_GATT_HANDLE_INVALID, &dv, &d->handle));
        if (err) return err;
        err = attr_record(d->handle, 0, d->flags, false);
        if (err) return err;
    }
    return 0;
}

int bb_port_gatts_register(bb_gatts_svc_t *svcs, uint8_t svc_count)
{
    if (s_registered) {
        /* The SoftDevice cannot remove services: only a restart empties its table. */
        for (size_t i = 0; i < BB_NRF_SD_MAX_CONNECTIONS; i++) {
            if (bb_nrf_conns[i].used) return -BB_STATUS_EBUSY;
        }
        int err = bb_nrf_stack_restart();
        if (err) return err;
    }
    s_registered = true;
    for (uint8_t s = 0; s < svc_count; s++) {
        ble_uuid_t uuid;
        int err = bb_nrf_uuid_to_sd(&uuid, &svcs[s].uuid);
        if (err) return err;
        err = bb_nrf_err(sd_ble_gatts_service_add(BLE_GATTS_SRVC_TYPE_PRIMARY, &uuid, &svcs[s].handle));
        if (err) return err;
        for (uint8_t c = 0; c < svcs[s].chr_count; c++) {
            err = add_chr(svcs[s].handle, &svcs[s].chrs[c]);
            if (err) return err;
        }
    }
    return 0;
}

int bb_port_gatts_value_changed(uint16_t value_handle)
{
    /* Fetched now: the core's pool may have moved the value since any earlier call. */
    uint16_t len = 0, max = 0;
    const uint8_t *v = bb_core_gatts_value(value_handle, &len, &max);
    if (!v) {
        return -BB_STATUS_EINVAL;
    }
    ble_gatts_value_t gv = {len, 0, (uint8_t *)(uintptr_t)v};
    return bb_nrf_err(sd_ble_gatts_value_set(BLE_CONN_HANDLE_INVALID, value_handle, &gv));
}

/* CCCD bits a peer wrote (1 notify, 2 indicate); 0 when unknown. */
static uint16_t cccd_bits(uint16_t conn, uint16_t cccd_handle)
{
    uint8_t v[2] = {0, 0};
    ble_gatts_value_t gv = {sizeof v, 0, v};
    if (sd_ble_gatts_value_get(conn, cccd_handle, &gv) != NRF_SUCCESS || gv.len < 1) {
        return 0;
    }
    return (uint16_t)(v[0] | (v[1] << 8));
}

/* One notification or indication, cut to ATT_MTU - 3 bytes as one PDU carries. With p_data
 * set, sd_ble_gatts_hvx also stores those bytes as the stack's copy of the value; peer reads
 * are answered from the core's value (rd_auth), so that copy is not read back. The stack sends
 * only to a peer whose CCCD has the matching bit (else NRF_ERROR_INVALID_STATE -> EPERM). */
/* One attempt of sd_ble_gatts_hvx. `given` NULL: the core's current value, fetched here each
 * time, since a wait for a queue slot may deliver a peer write that moves it in the pool. */
static uint32_t hvx_try(uint16_t conn, uint16_t room, uint8_t type, uint16_t handle,
                        const uint8_t *given, uint16_t given_len)
{
    const uint8_t *data = given;
    uint16_t len = given_len;
    if (data == NULL) {
        uint16_t core_max = 0;
        data = bb_core_gatts_value(handle, &len, &core_max);
        if (data == NULL) {
            return NRF_ERROR_INVALID_PARAM;
        }
    }
    uint16_t n = len > room ? room : len;
    ble_gatts_hvx_params_t hp;
    memset(&hp, 0, sizeof hp);
    hp.handle = handle;
    hp.type = type;
    hp.p_len = &n;
    hp.p_data = data;
    uint32_t e = sd_ble_gatts_hvx(conn, &hp);
    if (e == BLE_ERROR_GATTS_SYS_ATTR_MISSING) {
        (void)sd_ble_gatts_sys_attr_set(conn, NULL, 0, 0);
        n = len > room ? room : len;
        e = sd_ble_gatts_hvx(conn, &hp);
    }
    return e;
}

/* data NULL: the core's current value of handle. */
static int hvx_one(bb_nrf_conn_t *c, uint8_t type, uint16_t handle, const uint8_t *data, uint16_t len)
{
    if (type == BLE_GATT_HVX_INDICATION && c->indicate_handle) {
        return -BB_STATUS_EBUSY; /* one indication at a time per link (ATT) */
    }
    uint16_t room = (uint16_t)(c->att_mtu - 3);
    uint16_t conn = c->handle;
    if (type == BLE_GATT_HVX_NOTIFICATION && c->hvn_inflight >= BB_NRF_HVN_QUEUE &&
        !bb_nrf_tx_wait(conn, BB_NRF_TXQ_HVN)) {
        return bb_nrf_conn(conn) ? -BB_STATUS_EAGAIN : -BB_STATUS_ENOTCONN;
    }
    uint32_t e = hvx_try(conn, room, type, handle, data, len);
    if (e == NRF_ERROR_RESOURCES && type == BLE_GATT_HVX_NOTIFICATION) {
        /* Queue full although the count said otherwise (it restarts at 0 per link): wait for
         * HVN_TX_COMPLETE once more, with the queue taken as full. */
        c = bb_nrf_conn(conn);
        if (c != NULL) {
            c->hvn_inflight = BB_NRF_HVN_QUEUE;
        }
        if (!bb_nrf_tx_wait(conn, BB_NRF_TXQ_HVN)) {
            return bb_nrf_conn(conn) ? -BB_STATUS_EAGAIN : -BB_STATUS_ENOTCONN;
        }
        e = hvx_try(conn, room, type, handle, data, len);
    }
    if (e != NRF_SUCCESS) {
        return bb_nrf_err(e);
    }
    c = bb_nrf_conn(conn); /* a wait pulled events: look the link up again */
    if (c == NULL) {
        return 0;
    }
    if (type == BLE_GATT_HVX_INDICATION) {
        c->indicate_handle = handle;
    } else {
        c->hvn_inflight++;
    }
    return 0;
}

static int hvx(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len, uint8_t type)
{
    const bb_nrf_attr_t *ch = chr_by_value(value_handle);
    if (!ch) {
        return -BB_STATUS_EINVAL;
    }
    if (!data) {
        /* The core's value: hvx_one fetches it at each attempt (it may move meanwhile). */
        uint16_t core_len = 0, core_max = 0;
        if (!bb_core_gatts_value(value_handle, &core_len, &core_max)) {
            return -BB_STATUS_EINVAL;
        }
        len = 0;
    }
    if (conn != BB_CONN_NONE) {
        bb_nrf_conn_t *c = bb_nrf_conn(conn);
        return c ? hvx_one(c, type, value_handle, data, len) : -BB_STATUS_ENOTCONN;
    }
    /* BB_CONN_NONE: every link, as its CCCD asks (notification preferred when both bits are
     * set, as NimBLE does); links not subscribed are skipped. */
    if (!ch->cccd_handle) {
        return 0;
    }
    int first_err = 0;
    for (size_t i = 0; i < BB_NRF_SD_MAX_CONNECTIONS; i++) {
        bb_nrf_conn_t *c = &bb_nrf_conns[i];
        if (!c->used) {
            continue;
        }
        uint16_t bits = cccd_bits(c->handle, ch->cccd_handle);
        uint8_t t = (bits & 1u) ? BLE_GATT_HVX_NOTIFICATION
                  : (bits & 2u) ? BLE_GATT_HVX_INDICATION : BLE_GATT_HVX_INVALID;
        if (t == BLE_GATT_HVX_INVALID) {
            continue;
        }
        int err = hvx_one(c, t, value_handle, data, len);
        if (err && !first_err) first_err = err;
    }
    return first_err;
}

int bb_port_gatts_notify(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    return hvx(conn, value_handle, data, len, BLE_GATT_HVX_NOTIFICATION);
}

int bb_port_gatts_indicate(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    return hvx(conn, value_handle, data, len, BLE_GATT_HVX_INDICATION);
}

/* Read authorisation reply: hand the SoftDevice the core's current value (which the host may
 * have just set while answering), the stack then answers the requested offset from it. Every
 * request must be answered or the peer's ATT bearer waits until it times out (30 s). */
static void read_reply(uint16_t conn, uint16_t handle, uint8_t att_error)
{
    bb_nrf_conn_t *c = bb_nrf_conn(conn);
    if (c != NULL) {
        c->rd_reply_pending = false;
    }
    ble_gatts_rw_authorize_reply_params_t rp;
    memset(&rp, 0, sizeof rp);
    rp.type = BLE_GATTS_AUTHORIZE_TYPE_READ;
    if (att_error) {
        rp.params.read.gatt_status = (uint16_t)(BLE_GATT_STATUS_ATTERR_INVALID | att_error);
    } else {
        uint16_t len = 0, max = 0;
        const uint8_t *v = bb_core_gatts_value(handle, &len, &max);
        rp.params.read.gatt_status = BLE_GATT_STATUS_SUCCESS;
        if (v) {
            rp.params.read.update = 1;
            rp.params.read.offset = 0;
            rp.params.read.len = len;
            rp.params.read.p_data = v;
        }
    }
    uint32_t e = sd_ble_gatts_rw_authorize_reply(conn, &rp);
    if (e != NRF_SUCCESS && rp.params.read.update) {
        /* The core's value does not fit the stack's attribute (a fixed-length value shorter
         * than its buffer): answer from the stack's copy rather than leave the peer waiting. */
        rp.params.read.update = 0;
        rp.params.read.len = 0;
        rp.params.read.p_data = NULL;
        e = sd_ble_gatts_rw_authorize_reply(conn, &rp);
    }
    if (e == NRF_ERROR_BUSY && c != NULL) {
        /* Retried after the next events (bb_nrf_gatts_retry_replies), until it is taken. */
        c->rd_reply_pending = true;
        c->rd_reply_handle = handle;
        c->rd_reply_att = att_error;
        return;
    }
    if (e != NRF_SUCCESS && e != BLE_ERROR_INVALID_CONN_HANDLE) {
        (void)bb_log(1, "nrf_sd: read authorisation reply refused by the SoftDevice");
    }
}

void bb_nrf_gatts_retry_replies(void)
{
    for (size_t i = 0; i < BB_NRF_SD_MAX_CONNECTIONS; i++) {
        bb_nrf_conn_t *c = &bb_nrf_conns[i];
        if (c->used && c->rd_reply_pending) {
            read_reply(c->handle, c->rd_reply_handle, c->rd_reply_att);
        }
    }
}

static void write_auth_reply(uint16_t conn, uint16_t gatt_status, const ble_gatts_evt_write_t *w)
{
    ble_gatts_rw_authorize_reply_params_t rp;
    memset(&rp, 0, sizeof rp);
    rp.type = BLE_GATTS_AUTHORIZE_TYPE_WRITE;
    rp.params.write.gatt_status = gatt_status;
    if (w != NULL) {
        rp.params.write.update = 1; /* ble_gatts.h: always set for an accepted write */
        rp.params.write.offset = w->offset;
        rp.params.write.len = w->len;
        rp.params.write.p_data = w->data;
    }
    (void)sd_ble_gatts_rw_authorize_reply(conn, &rp);
}

/* Security mode 1 level a read with these flags needs (see perm()). */
static uint8_t read_level_needed(uint32_t f)
{
    if (f & BB_FLAG_READ_LESC) return 4u;
    if (f & BB_FLAG_READ_AUTHENTICATED) return 3u;
    return (f & BB_FLAG_READ_ENCRYPTED) ? 2u : 1u;
}

/* ATT error for a peer read the link's security does not allow, 0 when it does. read_perm makes
 * the SoftDevice refuse such reads itself; ble_gatts.h does not say whether it does so before the
 * authorisation request, so the port never serves a secured value from here without checking.
 * Insufficient Authentication in every case: the port cannot tell here whether the host holds a
 * bond with the peer (which would make an unencrypted link Insufficient Encryption). */
static uint8_t read_security_error(uint16_t conn, uint32_t f)
{
    uint8_t needed = read_level_needed(f);
    const bb_nrf_conn_t *c = bb_nrf_conn(conn);
    uint8_t level = (c != NULL && c->sec_mode.sm == 1) ? c->sec_mode.lv : 1u;
    return level >= needed ? 0 : BB_ATT_ERROR_INSUFFICIENT_AUTHENTICATION;
}

static int on_authorize(const ble_gatts_evt_t *e)
{
    const ble_gatts_evt_rw_authorize_request_t *a = &e->params.authorize_request;
    if (a->type == BLE_GATTS_AUTHORIZE_TYPE_READ) {
        uint16_t h = a->request.read.handle;
        const bb_nrf_attr_t *attr = attr_find(h);
        uint8_t refused = attr != NULL ? read_security_error(e->conn_handle, attr->flags) : 0;
        if (refused) {
            read_reply(e->conn_handle, h, refused);
            return 0;
        }
        bool ask = attr != NULL && a->request.read.offset == 0 && /* offset > 0: Read Blob */
                   ((attr->flags & BB_FLAG_READ_AUTHORIZED) || bb_nrf_cfg.read_request);
        uint32_t ref = ((uint32_t)e->conn_handle << 16) | h;
        if (!ask || bb_on_question_read(ref, e->conn_handle, h) != 0) {
            read_reply(e->conn_handle, h, 0); /* not asked, or no question slot: allow */
        }
        return 0;
    }
    if (a->type != BLE_GATTS_AUTHORIZE_TYPE_WRITE) {
        return 0;
    }
    const ble_gatts_evt_write_t *w = &a->request.write;
    switch (w->op) {
    case BLE_GATTS_OP_PREP_WRITE_REQ:
        /* A link that got no queue block (another link owns it, BLE_EVT_USER_MEM_REQUEST
         * answered NULL): the stack hands each Prepare Write here. */
        write_auth_reply(e->conn_handle, BLE_GATT_STATUS_ATTERR_PREPARE_QUEUE_FULL, NULL);
        return 0;
    case BLE_GATTS_OP_EXEC_WRITE_REQ_NOW:
    case BLE_GATTS_OP_EXEC_WRITE_REQ_CANCEL:
        write_auth_reply(e->conn_handle, BLE_GATT_STATUS_SUCCESS, NULL); /* nothing was queued */
        return 0;
    default:
        /* Write Request on an attribute with wr_auth, which this port never sets: take it as a
         * plain write rather than leave it unanswered. */
        if (write_reported(w->handle) &&
            bb_on_gatts_write(e->conn_handle, w->handle, w->data, w->len, w->offset) == -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM;
        }
        write_auth_reply(e->conn_handle, BLE_GATT_STATUS_SUCCESS, w);
        return 0;
    }
}

void bb_nrf_gatts_answer_read(uint32_t port_ref, const bb_answer_t *answer)
{
    uint8_t att = 0;
    if (!answer->timed_out && answer->u != 0) {
        att = answer->u > 0xFFu ? BB_ATT_ERROR_UNLIKELY_ERROR : (uint8_t)answer->u;
    }
    read_reply((uint16_t)(port_ref >> 16), (uint16_t)(port_ref & 0xFFFFu), att);
}

/* Report the executed long-write queue, entry by entry; s_qw_pos keeps the progress. */
static int report_queued_writes(uint16_t conn)
{
    if (s_qw_owner != conn) {
        return 0;
    }
    while ((size_t)s_qw_pos + 6 <= sizeof s_qw_mem) {
        const uint8_t *p = s_qw_mem + s_qw_pos;
        uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
        uint16_t off = (uint16_t)(p[2] | (p[3] << 8));
        uint16_t len = (uint16_t)(p[4] | (p[5] << 8));
        if (h == BLE_GATT_HANDLE_INVALID || (size_t)s_qw_pos + 6 + len > sizeof s_qw_mem) {
            break;
        }
        if (write_reported(h) && bb_on_gatts_write(conn, h, p + 6, len, off) == -BB_STATUS_ENOMEM) {
            return -BB_STATUS_ENOMEM;
        }
        s_qw_pos = (uint16_t)(s_qw_pos + 6 + len);
    }
    s_qw_pos = 0;
    return 0;
}

static int on_write(const ble_gatts_evt_t *e)
{
    const ble_gatts_evt_write_t *w = &e->params.write;
    switch (w->op) {
    case BLE_GATTS_OP_WRITE_REQ:
    case BLE_GATTS_OP_WRITE_CMD:
    case BLE_GATTS_OP_SIGN_WRITE_CMD:
        if (!write_reported(w->handle)) {
            return 0; /* a CCCD or a SoftDevice attribute (write_reported) */
        }
        return bb_on_gatts_write(e->conn_handle, w->handle, w->data, w->len, w->offset) ==
                       -BB_STATUS_ENOMEM ? -BB_STATUS_ENOMEM : 0;
    case BLE_GATTS_OP_EXEC_WRITE_REQ_NOW:
        return report_queued_writes(e->conn_handle);
    default:
        return 0;
    }
}

int bb_nrf_gatts_on_event(const ble_evt_t *evt)
{
    const ble_gatts_evt_t *e = &evt->evt.gatts_evt;
    bb_nrf_conn_t *c;
    int r;
    switch (evt->header.evt_id) {
    case BLE_EVT_USER_MEM_REQUEST: {
        uint16_t conn = evt->evt.common_evt.conn_handle;
        if (s_qw_owner == BLE_CONN_HANDLE_INVALID) {
            const ble_user_mem_block_t block = {s_qw_mem, sizeof s_qw_mem};
            memset(s_qw_mem, 0, sizeof s_qw_mem);
            s_qw_owner = conn;
            s_qw_pos = 0;
            (void)sd_ble_user_mem_reply(conn, &block);
        } else {
            /* NULL: this link's Prepare Writes come as write authorisation requests, refused
             * in on_authorize (the peer sees Prepare Queue Full). */
            (void)sd_ble_user_mem_reply(conn, NULL);
        }
        return 0;
    }
    case BLE_EVT_USER_MEM_RELEASE:
        if (evt->evt.common_evt.params.user_mem_release.mem_block.p_mem == s_qw_mem &&
            evt->evt.common_evt.conn_handle == s_qw_owner) {
            s_qw_owner = BLE_CONN_HANDLE_INVALID;
        }
        return 0;
    case BLE_GATTS_EVT_WRITE:
        return on_write(e);
    case BLE_GATTS_EVT_RW_AUTHORIZE_REQUEST:
        return on_authorize(e);
    case BLE_GATTS_EVT_SYS_ATTR_MISSING:
        (void)sd_ble_gatts_sys_attr_set(e->conn_handle, NULL, 0, 0);
        return 0;
    case BLE_GATTS_EVT_HVC:
        c = bb_nrf_conn(e->conn_handle);
        if (c && c->indicate_handle) {
            r = bb_on_gatts_indicate_done(c->handle, e->params.hvc.handle, 0);
            if (r == -BB_STATUS_ENOMEM) return r;
            c->indicate_handle = 0;
        }
        return 0;
    case BLE_GATTS_EVT_TIMEOUT:
        /* ATT transaction timeout: the pending indication will never be confirmed, and the
         * bearer is unusable until the link is re-established. */
        c = bb_nrf_conn(e->conn_handle);
        if (c && c->indicate_handle) {
            r = bb_on_gatts_indicate_done(c->handle, c->indicate_handle, BB_STATUS_ETIMEDOUT);
            if (r == -BB_STATUS_ENOMEM) return r;
            c->indicate_handle = 0;
        }
        bb_nrf_att_timeout(e->conn_handle);
        return 0;
    case BLE_GATTS_EVT_HVN_TX_COMPLETE:
        c = bb_nrf_conn(e->conn_handle);
        if (c) {
            uint8_t n = e->params.hvn_tx_complete.count;
            c->hvn_inflight = n > c->hvn_inflight ? 0 : (uint8_t)(c->hvn_inflight - n);
        }
        return 0;
    case BLE_GATTS_EVT_EXCHANGE_MTU_REQUEST: {
        c = bb_nrf_conn(e->conn_handle);
        uint16_t ours = bb_nrf_mtu_ours(c);
        uint16_t theirs = e->params.exchange_mtu_request.client_rx_mtu;
        uint16_t eff = theirs < ours ? theirs : ours;
        if (eff < BLE_GATT_ATT_MTU_DEFAULT) eff = BLE_GATT_ATT_MTU_DEFAULT;
        if (c && bb_on_mtu_exchanged(c->handle, eff) == -BB_STATUS_ENOMEM) return -BB_STATUS_ENOMEM;
        if (c) {
            c->att_mtu = eff;
            c->mtu_ours = ours;
        }
        (void)sd_ble_gatts_exchange_mtu_reply(e->conn_handle, ours);
        return 0;
    }
    default:
        return 0;
    }
}
