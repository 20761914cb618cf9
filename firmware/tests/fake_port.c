#include "fake_port.h"

#include <errno.h>
#include <string.h>

fake_port_t fp;

void fp_reset(void)
{
    memset(&fp, 0, sizeof(fp));
    fp.caps = (bb_port_caps_t){
        .board = "test", .port = "fake",
        .central = true, .peripheral = true, .observer = true, .broadcaster = false,
        .l2cap = true, .pairing = true, .ext_adv = false,
        .max_connections = 4, .max_mtu = 247, .max_l2cap_mtu = 512,
    };
    fp.addr = (bb_addr_t){BB_ADDR_TYPE_RANDOM, {1, 2, 3, 4, 5, 0xC6}};
    fp.now_ms = 1000;
}

static int rec(const char *name, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
               const uint8_t *data, uint16_t len)
{
    if (fp.ncalls < FP_MAX_CALLS) {
        fp_call_t *c = &fp.calls[fp.ncalls++];
        c->name = name;
        c->a[0] = a0; c->a[1] = a1; c->a[2] = a2; c->a[3] = a3;
        c->len = len;
        c->data_null = data == NULL;
        if (data != NULL) {
            memcpy(c->data, data, len < sizeof(c->data) ? len : sizeof(c->data));
        }
    }
    if (fp.inside != NULL) {
        fp.inside(name);
    }
    return fp.fail_name != NULL && strcmp(fp.fail_name, name) == 0 ? fp.fail_rc : 0;
}

const fp_call_t *fp_find(const char *name)
{
    for (unsigned i = fp.ncalls; i-- > 0;) {
        if (strcmp(fp.calls[i].name, name) == 0) {
            return &fp.calls[i];
        }
    }
    return NULL;
}

unsigned fp_count(const char *name)
{
    unsigned n = 0;
    for (unsigned i = 0; i < fp.ncalls; i++) {
        n += strcmp(fp.calls[i].name, name) == 0;
    }
    return n;
}

int bb_port_init(void) { return 0; }
const bb_port_caps_t *bb_port_caps(void) { return &fp.caps; }
uint32_t bb_port_millis(void) { return fp.now_ms; }
uint32_t bb_port_boot_id(void) { return 0xB007; }

void bb_port_critical_enter(void)
{
    if (fp.critical_depth++ != 0) {
        fp.critical_nested = true;
    }
}

void bb_port_critical_exit(void) { fp.critical_depth--; }

int bb_port_transport_write(const uint8_t *buf, size_t len)
{
    if (fp.write_stall != 0) {
        fp.write_stall--;
        return 0;
    }
    size_t n = fp.write_limit != 0 && len > fp.write_limit ? fp.write_limit : len;
    if (n > sizeof(fp.out) - fp.out_len) {
        n = sizeof(fp.out) - fp.out_len;
    }
    memcpy(fp.out + fp.out_len, buf, n);
    fp.out_len += n;
    return (int)n;
}

int bb_port_ble_activate(bool on) { return rec("ble_activate", on, 0, 0, 0, NULL, 0); }
int bb_port_reset(void) { return rec("reset", 0, 0, 0, 0, NULL, 0); }
int bb_port_config_apply(const bb_config_t *cfg)
{
    int rc = rec("config_apply", cfg->mtu, cfg->io, 0, 0, (const uint8_t *)cfg->gap_name,
                 (uint16_t)strlen(cfg->gap_name));
    if (rc == 0) {
        fp.last_config = *cfg;
    }
    return rc;
}
int bb_port_addr_get(bb_addr_t *out)
{
    *out = fp.addr;
    return rec("addr_get", 0, 0, 0, 0, NULL, 0);
}
int bb_port_addr_set_static(const uint8_t addr[BB_ADDR_LEN])
{
    return rec("addr_set_static", 0, 0, 0, 0, addr, BB_ADDR_LEN);
}
int bb_port_gap_advertise_start(const bb_adv_params_t *p)
{
    return rec("gap_advertise_start", p->interval_us, p->connectable, p->directed, p->tx_power,
               p->adv_data, p->adv_len);
}
int bb_port_gap_advertise_stop(void) { return rec("gap_advertise_stop", 0, 0, 0, 0, NULL, 0); }
int bb_port_gap_scan_start(const bb_scan_params_t *p)
{
    return rec("gap_scan_start", p->duration_ms, p->interval_us, p->window_us, p->active, NULL, 0);
}
int bb_port_gap_scan_stop(void) { return rec("gap_scan_stop", 0, 0, 0, 0, NULL, 0); }
int bb_port_gap_connect(const bb_connect_params_t *p)
{
    return rec("gap_connect", p->peer.type, p->scan_duration_ms, p->conn.min_interval_us,
               p->conn.latency, p->peer.addr, BB_ADDR_LEN);
}
int bb_port_gap_connect_cancel(void) { return rec("gap_connect_cancel", 0, 0, 0, 0, NULL, 0); }
int bb_port_gap_disconnect(uint16_t conn) { return rec("gap_disconnect", conn, 0, 0, 0, NULL, 0); }
int bb_port_gap_conn_update(uint16_t conn, const bb_conn_params_t *p)
{
    return rec("gap_conn_update", conn, p->min_interval_us, p->max_interval_us, p->latency, NULL, 0);
}

/* Handles as a stack would give them: service, then per characteristic declaration, value,
 * CCCD when it notifies or indicates, then its descriptors. */
int bb_port_gatts_register(bb_gatts_svc_t *svcs, uint8_t svc_count)
{
    int rc = rec("gatts_register", svc_count, 0, 0, 0, NULL, 0);
    if (rc != 0) {
        return rc;
    }
    uint16_t h = 10;
    for (unsigned s = 0; s < svc_count; s++) {
        svcs[s].handle = h++;
        for (unsigned c = 0; c < svcs[s].chr_count; c++) {
            bb_gatts_chr_t *ch = &svcs[s].chrs[c];
            ch->decl_handle = h++;
            ch->value_handle = h++;
            ch->cccd_handle = (ch->flags & (BB_FLAG_NOTIFY | BB_FLAG_INDICATE)) ? h++ : 0;
            for (unsigned d = 0; d < ch->dsc_count; d++) {
                ch->dscs[d].handle = h++;
            }
        }
    }
    return 0;
}
int bb_port_gatts_value_changed(uint16_t value_handle)
{
    return rec("gatts_value_changed", value_handle, 0, 0, 0, NULL, 0);
}
int bb_port_gatts_notify(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    return rec("gatts_notify", conn, value_handle, 0, 0, data, len);
}
int bb_port_gatts_indicate(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    return rec("gatts_indicate", conn, value_handle, 0, 0, data, len);
}
int bb_port_gattc_discover_services(uint16_t conn, const bb_uuid_t *uuid)
{
    return rec("gattc_discover_services", conn, uuid != NULL ? uuid->len : 0, 0, 0,
               uuid != NULL ? uuid->bytes : NULL, uuid != NULL ? uuid->len : 0);
}
int bb_port_gattc_discover_characteristics(uint16_t conn, uint16_t start, uint16_t end,
                                           const bb_uuid_t *uuid)
{
    return rec("gattc_discover_characteristics", conn, start, end, uuid != NULL, NULL, 0);
}
int bb_port_gattc_discover_descriptors(uint16_t conn, uint16_t start, uint16_t end,
                                       const bb_uuid_t *uuid)
{
    return rec("gattc_discover_descriptors", conn, start, end, uuid != NULL, NULL, 0);
}
int bb_port_gattc_read(uint16_t conn, uint16_t value_handle)
{
    return rec("gattc_read", conn, value_handle, 0, 0, NULL, 0);
}
int bb_port_gattc_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len,
                        bool with_response)
{
    return rec("gattc_write", conn, value_handle, with_response, 0, data, len);
}
int bb_port_gattc_exchange_mtu(uint16_t conn) { return rec("gattc_exchange_mtu", conn, 0, 0, 0, NULL, 0); }
int bb_port_l2cap_listen(uint16_t psm, uint16_t mtu) { return rec("l2cap_listen", psm, mtu, 0, 0, NULL, 0); }
int bb_port_l2cap_connect(uint16_t conn, uint16_t psm, uint16_t mtu)
{
    return rec("l2cap_connect", conn, psm, mtu, 0, NULL, 0);
}
int bb_port_l2cap_send(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len)
{
    int rc = rec("l2cap_send", conn, cid, 0, 0, data, len);
    return rc != 0 ? rc : fp.l2cap_send_rc;
}
int bb_port_l2cap_disconnect(uint16_t conn, uint16_t cid)
{
    return rec("l2cap_disconnect", conn, cid, 0, 0, NULL, 0);
}
int bb_port_gap_pair(uint16_t conn) { return rec("gap_pair", conn, 0, 0, 0, NULL, 0); }
int bb_port_gap_passkey(uint16_t conn, uint8_t action, uint32_t passkey)
{
    return rec("gap_passkey", conn, action, passkey, 0, NULL, 0);
}
int bb_port_sec_erase_bonds(void) { return rec("sec_erase_bonds", 0, 0, 0, 0, NULL, 0); }
int bb_port_sec_state(uint16_t conn, bool *encrypted, bool *authenticated, bool *bonded,
                      uint8_t *key_size)
{
    *encrypted = true;
    *authenticated = false;
    *bonded = true;
    *key_size = 16;
    return rec("sec_state", conn, 0, 0, 0, NULL, 0);
}

void bb_port_answer(bb_question_kind_t kind, uint32_t port_ref, const bb_answer_t *answer)
{
    fp.answers++;
    fp.answer_kind = kind;
    fp.answer_ref = port_ref;
    fp.answer = *answer;
    if (answer->data != NULL && answer->len <= sizeof(fp.answer_data)) {
        memcpy(fp.answer_data, answer->data, answer->len);
        fp.answer.data = fp.answer_data;
    }
    rec("answer", kind, port_ref, answer->u, answer->found, NULL, 0);
}
