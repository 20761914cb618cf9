/*
 * nrf_sd port: pairing, bonding, passkeys, encryption state, and the answers to questions.
 *
 * Bonds live on the host, not in the board's flash: after a bonding pairing the keys are handed
 * over as SET_SECRET, and a later encryption request (BLE_GAP_EVT_SEC_INFO_REQUEST as
 * peripheral, gap_pair as central) asks for them with GET_SECRET. One record per bond:
 *   PEER_SEC, key = peer identity address (type, 6 bytes LE)      (lookup for LESC and central)
 *   OUR_SEC,  key = EDIV (2 LE) + Rand (8)                         (legacy LTK we distributed)
 * Both carry the same value, RECORD_LEN bytes (see record_pack).
 * Not kept: CCCD values (sys attributes) across reconnections, peer IRKs for resolving a
 * bonded peer's private address (sd_ble_gap_device_identities_set is not fed).
 */
#include <string.h>

#include "bb_nrf_sd.h"

#define RECORD_VERSION 1
#define ENC_KEY_LEN (BLE_GAP_SEC_KEY_LEN + 1 + 2 + BLE_GAP_SEC_RAND_LEN) /* ltk, flags, ediv, rand */
#define RECORD_LEN (1 + 1 + 2 * ENC_KEY_LEN + BLE_GAP_SEC_KEY_LEN + 1 + BB_ADDR_LEN)

static bool s_lesc_ok;
static ble_gap_lesc_p256_pk_t s_own_pk;

bool bb_nrf_lesc_available(void)
{
    return s_lesc_ok;
}

void bb_nrf_sec_params(ble_gap_sec_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->bond = bb_nrf_cfg.bond ? 1 : 0;
    p->mitm = bb_nrf_cfg.mitm ? 1 : 0;
    p->lesc = (bb_nrf_cfg.le_secure && s_lesc_ok) ? 1 : 0;
    p->io_caps = bb_nrf_cfg.io; /* BB_IO_* and BLE_GAP_IO_CAPS_* share their numbering */
    p->oob = 0;
    p->min_key_size = 7;
    p->max_key_size = 16;
    if (p->bond) {
        p->kdist_own.enc = 1;
        p->kdist_own.id = 1;
        p->kdist_peer.enc = 1;
        p->kdist_peer.id = 1;
    }
}

static void keyset(bb_nrf_conn_t *c, ble_gap_sec_keyset_t *ks)
{
    memset(ks, 0, sizeof *ks);
    ks->keys_own.p_enc_key = &c->own_enc;
    ks->keys_own.p_id_key = &c->own_id;
    ks->keys_own.p_pk = s_lesc_ok ? &s_own_pk : NULL;
    ks->keys_peer.p_enc_key = &c->peer_enc;
    ks->keys_peer.p_id_key = &c->peer_id;
    ks->keys_peer.p_pk = s_lesc_ok ? &c->peer_pk : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Records                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static uint8_t *enc_pack(uint8_t *p, const ble_gap_enc_key_t *k)
{
    memcpy(p, k->enc_info.ltk, BLE_GAP_SEC_KEY_LEN);
    p += BLE_GAP_SEC_KEY_LEN;
    *p++ = (uint8_t)(k->enc_info.lesc | (k->enc_info.auth << 1) | (k->enc_info.ltk_len << 2));
    *p++ = (uint8_t)k->master_id.ediv;
    *p++ = (uint8_t)(k->master_id.ediv >> 8);
    memcpy(p, k->master_id.rand, BLE_GAP_SEC_RAND_LEN);
    return p + BLE_GAP_SEC_RAND_LEN;
}

static const uint8_t *enc_unpack(const uint8_t *p, ble_gap_enc_key_t *k)
{
    memcpy(k->enc_info.ltk, p, BLE_GAP_SEC_KEY_LEN);
    p += BLE_GAP_SEC_KEY_LEN;
    k->enc_info.lesc = *p & 1u;
    k->enc_info.auth = (*p >> 1) & 1u;
    k->enc_info.ltk_len = (*p >> 2) & 0x3Fu;
    p++;
    k->master_id.ediv = (uint16_t)(p[0] | (p[1] << 8));
    p += 2;
    memcpy(k->master_id.rand, p, BLE_GAP_SEC_RAND_LEN);
    return p + BLE_GAP_SEC_RAND_LEN;
}

static void record_pack(uint8_t out[RECORD_LEN], const bb_nrf_conn_t *c)
{
    uint8_t *p = out;
    *p++ = RECORD_VERSION;
    *p++ = (uint8_t)((c->lesc ? 1u : 0u) | (c->sec_mode.lv >= 3 ? 2u : 0u));
    p = enc_pack(p, &c->own_enc);
    p = enc_pack(p, &c->peer_enc);
    memcpy(p, c->peer_id.id_info.irk, BLE_GAP_SEC_KEY_LEN);
    p += BLE_GAP_SEC_KEY_LEN;
    *p++ = c->peer.type;
    memcpy(p, c->peer.addr, BB_ADDR_LEN);
}

static bool record_unpack(const uint8_t *in, uint16_t len, bb_nrf_conn_t *c)
{
    if (len != RECORD_LEN || in[0] != RECORD_VERSION) {
        return false;
    }
    const uint8_t *p = in + 1;
    c->lesc = (*p & 1u) != 0;
    p++;
    p = enc_unpack(p, &c->own_enc);
    p = enc_unpack(p, &c->peer_enc);
    memcpy(c->peer_id.id_info.irk, p, BLE_GAP_SEC_KEY_LEN);
    return true;
}

static void addr_key(uint8_t key[1 + BB_ADDR_LEN], const bb_addr_t *a)
{
    key[0] = a->type;
    memcpy(key + 1, a->addr, BB_ADDR_LEN);
}

/* Identity of the peer: its distributed identity address, else the link address. */
static void identity(const bb_nrf_conn_t *c, bool have_id, bb_addr_t *out)
{
    if (have_id) {
        bb_nrf_addr_from_sd(out, &c->peer_id.id_addr_info);
    } else {
        *out = c->peer;
    }
}

/* Question refs: link handle in the low 16 bits, purpose above. */
#define REF_SEC_INFO 0x10000u   /* answer -> sd_ble_gap_sec_info_reply */
#define REF_ENCRYPT 0x20000u    /* answer -> sd_ble_gap_encrypt, else authenticate */
#define REF_STORE 0x30000u      /* answer ignored */

static void store_bond(bb_nrf_conn_t *c, bool have_peer_id)
{
    uint8_t value[RECORD_LEN];
    uint8_t key[1 + BB_ADDR_LEN];
    bb_addr_t id;
    identity(c, have_peer_id, &id);
    record_pack(value, c);
    addr_key(key, &id);
    if (bb_on_question_set_secret(REF_STORE | c->handle, BB_SECRET_TYPE_PEER_SEC, key, sizeof key,
                                  value, sizeof value) != 0) {
        (void)bb_log(1, "nrf_sd: bond not stored (no question slot)");
    }
    if (!c->lesc) {
        uint8_t mkey[2 + BLE_GAP_SEC_RAND_LEN];
        mkey[0] = (uint8_t)c->own_enc.master_id.ediv;
        mkey[1] = (uint8_t)(c->own_enc.master_id.ediv >> 8);
        memcpy(mkey + 2, c->own_enc.master_id.rand, BLE_GAP_SEC_RAND_LEN);
        if (bb_on_question_set_secret(REF_STORE | c->handle, BB_SECRET_TYPE_OUR_SEC, mkey, sizeof mkey,
                                      value, sizeof value) != 0) {
            (void)bb_log(1, "nrf_sd: bond not stored (no question slot)");
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* bb_port.h: security                                                                           */
/* ------------------------------------------------------------------------------------------ */

/* Central: start pairing. Peripheral: send a Security Request, to which a bonded central may
 * answer by re-encrypting with its stored keys instead of pairing (SEC_INFO_REQUEST, then
 * CONN_SEC_UPDATE and no AUTH_STATUS). So `pairing` is not set here but on SEC_PARAMS_REQUEST,
 * the first event of an actual pairing in both roles (ble_gap.h MSCs): a CONN_SEC_UPDATE
 * outside a pairing is reported as it comes, else `pair()` would wait for an AUTH_STATUS that
 * a re-encryption never raises. */
static int authenticate(bb_nrf_conn_t *c)
{
    ble_gap_sec_params_t sp;
    bb_nrf_sec_params(&sp);
    return bb_nrf_err(sd_ble_gap_authenticate(c->handle, &sp));
}

int bb_port_gap_pair(uint16_t conn)
{
    bb_nrf_conn_t *c = bb_nrf_conn(conn);
    if (!c) {
        return -BB_STATUS_ENOTCONN;
    }
    if (c->role == BLE_GAP_ROLE_PERIPH) {
        return authenticate(c); /* sends a Security Request to the central */
    }
    /* Central: re-encrypt with a stored bond if the host has one, else pair. */
    uint8_t key[1 + BB_ADDR_LEN];
    addr_key(key, &c->peer);
    if (bb_on_question_get_secret(REF_ENCRYPT | conn, BB_SECRET_TYPE_PEER_SEC, 0, key, sizeof key) != 0) {
        return authenticate(c);
    }
    return 0;
}

/* LOG line naming the passkey the SoftDevice displays (no printf in the port). */
static void log_chosen_passkey(uint32_t key)
{
    static const char head[] = "nrf_sd: gap_passkey DISPLAY: the SoftDevice chose passkey ";
    char line[sizeof head + BLE_GAP_PASSKEY_LEN];
    memcpy(line, head, sizeof head - 1);
    for (int i = BLE_GAP_PASSKEY_LEN - 1; i >= 0; i--) {
        line[sizeof head - 1 + (size_t)i] = (char)('0' + key % 10u);
        key /= 10u;
    }
    line[sizeof line - 1] = '\0';
    (void)bb_log(1, line);
}

int bb_port_gap_passkey(uint16_t conn, uint8_t action, uint32_t passkey)
{
    bb_nrf_conn_t *c = bb_nrf_conn(conn);
    if (!c) {
        return -BB_STATUS_ENOTCONN;
    }
    switch (action) {
    case BB_PASSKEY_ACTION_INPUT: {
        if (passkey > 999999u) {
            return -BB_STATUS_EINVAL;
        }
        uint8_t ascii[BLE_GAP_PASSKEY_LEN];
        for (int i = BLE_GAP_PASSKEY_LEN - 1; i >= 0; i--) {
            ascii[i] = (uint8_t)('0' + passkey % 10u);
            passkey /= 10u;
        }
        return bb_nrf_err(sd_ble_gap_auth_key_reply(conn, BLE_GAP_AUTH_KEY_TYPE_PASSKEY, ascii));
    }
    case BB_PASSKEY_ACTION_NUMERIC_COMPARISON:
        return bb_nrf_err(sd_ble_gap_auth_key_reply(
            conn, passkey ? BLE_GAP_AUTH_KEY_TYPE_PASSKEY : BLE_GAP_AUTH_KEY_TYPE_NONE, NULL));
    case BB_PASSKEY_ACTION_DISPLAY:
        /* The SoftDevice chooses the displayed passkey itself (BLE_GAP_EVT_PASSKEY_DISPLAY) and
         * takes no key from the application at that point: the static-passkey option
         * (BLE_GAP_OPT_PASSKEY) applies only to pairings started after it is set, while the
         * API's DISPLAY answer comes during the pairing. The PASSKEY_ACTION event therefore
         * carries the SoftDevice's key; answering with that key is accepted, any other fails
         * (EOPNOTSUPP, with a LOG line naming the key) instead of being silently ignored,
         * which would leave the user typing a key the board does not use. */
        if (passkey > 999999u) {
            return -BB_STATUS_EINVAL;
        }
        if (!c->passkey_shown || passkey == c->shown_passkey) {
            return 0;
        }
        log_chosen_passkey(c->shown_passkey);
        return -BB_STATUS_EOPNOTSUPP;
    case BB_PASSKEY_ACTION_NONE:
        return 0; /* nothing to answer */
    default:
        return -BB_STATUS_EINVAL;
    }
}

int bb_port_sec_erase_bonds(void)
{
    /* Bonds are stored on the host (SET_SECRET); the board keeps none to erase. */
    return 0;
}

int bb_port_sec_state(uint16_t conn, bool *encrypted, bool *authenticated, bool *bonded, uint8_t *key_size)
{
    bb_nrf_conn_t *c = bb_nrf_conn(conn);
    if (!c) {
        return -BB_STATUS_ENOTCONN;
    }
    ble_gap_conn_sec_t s;
    if (sd_ble_gap_conn_sec_get(conn, &s) == NRF_SUCCESS) {
        c->sec_mode = s.sec_mode;
        c->key_size = s.encr_key_size;
    }
    *encrypted = c->sec_mode.sm == 1 && c->sec_mode.lv >= 2;
    *authenticated = c->sec_mode.sm == 1 && c->sec_mode.lv >= 3;
    *bonded = c->bonded;
    *key_size = *encrypted ? c->key_size : 0;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void answer_secret(uint32_t ref, const bb_answer_t *a)
{
    uint16_t conn = (uint16_t)(ref & 0xFFFFu);
    bb_nrf_conn_t *c = bb_nrf_conn(conn);
    uint32_t purpose = ref & 0xFFFF0000u;
    if (!c || purpose == REF_STORE) {
        return;
    }
    bool found = !a->timed_out && a->found && a->data && record_unpack(a->data, a->len, c);
    if (purpose == REF_SEC_INFO) {
        /* Peripheral: the central encrypts with the LTK this side distributed (legacy) or the
         * shared LESC LTK, both kept as own_enc. */
        if (found && sd_ble_gap_sec_info_reply(conn, &c->own_enc.enc_info, NULL, NULL) == NRF_SUCCESS) {
            c->bonded = true;
            return;
        }
        (void)sd_ble_gap_sec_info_reply(conn, NULL, NULL, NULL); /* unknown (or unusable) key */
        return;
    }
    if (purpose == REF_ENCRYPT) {
        if (found) {
            const ble_gap_enc_key_t *k = c->lesc ? &c->own_enc : &c->peer_enc;
            if (sd_ble_gap_encrypt(conn, &k->master_id, &k->enc_info) == NRF_SUCCESS) {
                c->bonded = true;
                return;
            }
        }
        (void)authenticate(c);
    }
}

void bb_port_answer(bb_question_kind_t kind, uint32_t port_ref, const bb_answer_t *answer)
{
    switch (kind) {
    case BB_QUESTION_READ: bb_nrf_gatts_answer_read(port_ref, answer); break;
    case BB_QUESTION_L2CAP_ACCEPT: bb_nrf_l2cap_answer(port_ref, answer); break;
    case BB_QUESTION_GET_SECRET:
    case BB_QUESTION_SET_SECRET: answer_secret(port_ref, answer); break;
    default: break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static int enc_update(bb_nrf_conn_t *c)
{
    bool enc = c->sec_mode.sm == 1 && c->sec_mode.lv >= 2;
    bool auth = c->sec_mode.sm == 1 && c->sec_mode.lv >= 3;
    return bb_on_encryption_update(c->handle, enc, auth, c->bonded, enc ? c->key_size : 0);
}

static uint32_t passkey_value(const uint8_t ascii[BLE_GAP_PASSKEY_LEN])
{
    uint32_t v = 0;
    for (int i = 0; i < BLE_GAP_PASSKEY_LEN; i++) {
        v = v * 10u + (uint32_t)(ascii[i] - '0');
    }
    return v;
}

/* A request on a link this port does not track (over the link count, being dropped): answered
 * with a refusal, since an unanswered one holds the link's security procedure until it times
 * out. */
static void refuse_untracked(uint16_t conn, uint16_t evt_id)
{
    switch (evt_id) {
    case BLE_GAP_EVT_SEC_PARAMS_REQUEST:
        (void)sd_ble_gap_sec_params_reply(conn, BLE_GAP_SEC_STATUS_PAIRING_NOT_SUPP, NULL, NULL);
        break;
    case BLE_GAP_EVT_SEC_INFO_REQUEST:
        (void)sd_ble_gap_sec_info_reply(conn, NULL, NULL, NULL);
        break;
    case BLE_GAP_EVT_AUTH_KEY_REQUEST:
    case BLE_GAP_EVT_PASSKEY_DISPLAY:
        (void)sd_ble_gap_auth_key_reply(conn, BLE_GAP_AUTH_KEY_TYPE_NONE, NULL);
        break;
    default:
        break;
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

int bb_nrf_sec_on_event(const ble_evt_t *evt)
{
    const ble_gap_evt_t *g = &evt->evt.gap_evt;
    bb_nrf_conn_t *c = bb_nrf_conn(g->conn_handle);
    if (!c) {
        refuse_untracked(g->conn_handle, evt->header.evt_id);
        return 0;
    }
    switch (evt->header.evt_id) {
    case BLE_GAP_EVT_SEC_PARAMS_REQUEST: {
        /* The keyset points into bb_nrf_conns[] and s_own_pk: the SoftDevice writes the keys
         * there until AUTH_STATUS (the struct itself is copied by the call). */
        ble_gap_sec_keyset_t ks;
        keyset(c, &ks);
        c->pairing = true;
        c->passkey_shown = false; /* a new pairing: PASSKEY_DISPLAY tells its key */
        uint32_t e;
        if (c->role == BLE_GAP_ROLE_CENTRAL) {
            /* Central: parameters went with sd_ble_gap_authenticate; only keys here. */
            e = sd_ble_gap_sec_params_reply(c->handle, BLE_GAP_SEC_STATUS_SUCCESS, NULL, &ks);
        } else {
            ble_gap_sec_params_t sp;
            bb_nrf_sec_params(&sp);
            e = sd_ble_gap_sec_params_reply(c->handle, BLE_GAP_SEC_STATUS_SUCCESS, &sp, &ks);
        }
        if (e != NRF_SUCCESS) {
            /* The request stays open after an error (ble_gap.h): refuse it instead. */
            (void)sd_ble_gap_sec_params_reply(c->handle, BLE_GAP_SEC_STATUS_UNSPECIFIED, NULL, NULL);
        }
        return 0;
    }
    case BLE_GAP_EVT_SEC_REQUEST:
        /* Central: the peripheral asks for security. */
        (void)bb_port_gap_pair(c->handle);
        return 0;
    case BLE_GAP_EVT_SEC_INFO_REQUEST: {
        const ble_gap_evt_sec_info_request_t *r = &g->params.sec_info_request;
        uint32_t ref = REF_SEC_INFO | c->handle;
        int q;
        /* LESC keys carry EDIV 0 and Rand 0; a legacy LTK has a random EDIV/Rand pair. */
        if (r->master_id.ediv != 0 || !all_zero(r->master_id.rand, BLE_GAP_SEC_RAND_LEN)) {
            uint8_t mkey[2 + BLE_GAP_SEC_RAND_LEN];
            mkey[0] = (uint8_t)r->master_id.ediv;
            mkey[1] = (uint8_t)(r->master_id.ediv >> 8);
            memcpy(mkey + 2, r->master_id.rand, BLE_GAP_SEC_RAND_LEN);
            q = bb_on_question_get_secret(ref, BB_SECRET_TYPE_OUR_SEC, 0, mkey, sizeof mkey);
        } else {
            /* LESC (EDIV and Rand are zero): look the bond up by the peer's address. */
            bb_addr_t a;
            uint8_t key[1 + BB_ADDR_LEN];
            bb_nrf_addr_from_sd(&a, &r->peer_addr);
            addr_key(key, &a);
            q = bb_on_question_get_secret(ref, BB_SECRET_TYPE_PEER_SEC, 0, key, sizeof key);
        }
        if (q != 0) {
            (void)sd_ble_gap_sec_info_reply(c->handle, NULL, NULL, NULL); /* unknown: no key */
        }
        return 0;
    }
    case BLE_GAP_EVT_PASSKEY_DISPLAY: {
        const ble_gap_evt_passkey_display_t *d = &g->params.passkey_display;
        uint8_t action = d->match_request ? BB_PASSKEY_ACTION_NUMERIC_COMPARISON : BB_PASSKEY_ACTION_DISPLAY;
        c->shown_passkey = passkey_value(d->passkey);
        c->passkey_shown = !d->match_request;
        int r = bb_on_passkey_action(c->handle, action, passkey_value(d->passkey));
        return r == -BB_STATUS_ENOMEM ? r : 0;
    }
    case BLE_GAP_EVT_AUTH_KEY_REQUEST:
        if (g->params.auth_key_request.key_type == BLE_GAP_AUTH_KEY_TYPE_PASSKEY) {
            int r = bb_on_passkey_action(c->handle, BB_PASSKEY_ACTION_INPUT, 0);
            return r == -BB_STATUS_ENOMEM ? r : 0;
        }
        (void)sd_ble_gap_auth_key_reply(c->handle, BLE_GAP_AUTH_KEY_TYPE_NONE, NULL); /* no OOB */
        return 0;
    case BLE_GAP_EVT_LESC_DHKEY_REQUEST: {
        ble_gap_lesc_dhkey_t dh;
        const ble_gap_evt_lesc_dhkey_request_t *r = &g->params.lesc_dhkey_request;
        if (bb_nrf_lesc_dhkey(r->p_pk_peer->pk, dh.key) != 0) {
            /* An invalid peer key must fail the pairing: reply with a key nobody can match. */
            memset(dh.key, 0, sizeof dh.key);
        }
        (void)sd_ble_gap_lesc_dhkey_reply(c->handle, &dh);
        return 0;
    }
    case BLE_GAP_EVT_CONN_SEC_UPDATE:
        c->sec_mode = g->params.conn_sec_update.conn_sec.sec_mode;
        c->key_size = g->params.conn_sec_update.conn_sec.encr_key_size;
        if (c->pairing) {
            return 0; /* AUTH_STATUS follows and reports the outcome with the bond state */
        }
        return enc_update(c) == -BB_STATUS_ENOMEM ? -BB_STATUS_ENOMEM : 0;
    case BLE_GAP_EVT_AUTH_STATUS: {
        const ble_gap_evt_auth_status_t *s = &g->params.auth_status;
        if (bb_nrf_stage == 0) {
            if (s->auth_status == BLE_GAP_SEC_STATUS_SUCCESS) {
                c->bonded = s->bonded;
                c->lesc = s->lesc;
            }
            if (enc_update(c) == -BB_STATUS_ENOMEM) return -BB_STATUS_ENOMEM;
            bb_nrf_stage = 1;
        }
        c->pairing = false;
        if (s->auth_status == BLE_GAP_SEC_STATUS_SUCCESS && s->bonded) {
            store_bond(c, s->kdist_peer.id != 0);
        }
        return 0;
    }
    default:
        return 0;
    }
}

int bb_nrf_sec_init(void)
{
    s_lesc_ok = bb_nrf_lesc_public_key(s_own_pk.pk) == 0;
    return s_lesc_ok ? 0 : -BB_STATUS_EOPNOTSUPP;
}
