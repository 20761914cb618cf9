/*
 * Null port: implements bb_port.h with no radio and no transport, so the core links on its own
 * for the Cortex-M4F size build (make -C firmware arm-size). Radio operations answer
 * -BB_STATUS_EOPNOTSUPP; the transport swallows every byte.
 */

#include "bb_port.h"

static const bb_port_caps_t null_caps = {
    .board = "null",
    .port = "null",
    .max_connections = 0,
    .max_mtu = 23,
    .max_l2cap_mtu = 0,
    .holds_back_events = false,
};

static uint32_t ticks_ms;

int bb_port_init(void) { return 0; }
const bb_port_caps_t *bb_port_caps(void) { return &null_caps; }
/* No timer: time advances by one ms per call, enough for question timeouts to expire. */
uint32_t bb_port_millis(void) { return ticks_ms++; }
uint32_t bb_port_boot_id(void) { return 1; }
void bb_port_critical_enter(void) {}
void bb_port_critical_exit(void) {}
int bb_port_transport_write(const uint8_t *buf, size_t len) { (void)buf; return (int)len; }

int bb_port_ble_activate(bool on) { return on ? -BB_STATUS_EOPNOTSUPP : 0; }
int bb_port_reset(void) { return 0; }
int bb_port_config_apply(const bb_config_t *cfg) { (void)cfg; return 0; }
int bb_port_addr_get(bb_addr_t *out) { (void)out; return -BB_STATUS_EOPNOTSUPP; }
int bb_port_addr_set_static(const uint8_t addr[BB_ADDR_LEN]) { (void)addr; return -BB_STATUS_EOPNOTSUPP; }

int bb_port_gap_advertise_start(const bb_adv_params_t *p) { (void)p; return -BB_STATUS_EOPNOTSUPP; }
int bb_port_gap_advertise_stop(void) { return -BB_STATUS_EOPNOTSUPP; }
int bb_port_gap_scan_start(const bb_scan_params_t *p) { (void)p; return -BB_STATUS_EOPNOTSUPP; }
int bb_port_gap_scan_stop(void) { return -BB_STATUS_EOPNOTSUPP; }
int bb_port_gap_connect(const bb_connect_params_t *p) { (void)p; return -BB_STATUS_EOPNOTSUPP; }
int bb_port_gap_connect_cancel(void) { return -BB_STATUS_EOPNOTSUPP; }
int bb_port_gap_disconnect(uint16_t conn) { (void)conn; return -BB_STATUS_EOPNOTSUPP; }
int bb_port_gap_conn_update(uint16_t conn, const bb_conn_params_t *p)
{
    (void)conn; (void)p; return -BB_STATUS_EOPNOTSUPP;
}

int bb_port_gatts_register(bb_gatts_svc_t *svcs, uint8_t svc_count)
{
    (void)svcs; (void)svc_count; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_gatts_value_changed(uint16_t value_handle) { (void)value_handle; return 0; }
int bb_port_gatts_notify(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    (void)conn; (void)value_handle; (void)data; (void)len; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_gatts_indicate(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len)
{
    (void)conn; (void)value_handle; (void)data; (void)len; return -BB_STATUS_EOPNOTSUPP;
}

int bb_port_gattc_discover_services(uint16_t conn, const bb_uuid_t *uuid)
{
    (void)conn; (void)uuid; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_gattc_discover_characteristics(uint16_t conn, uint16_t start, uint16_t end,
                                           const bb_uuid_t *uuid)
{
    (void)conn; (void)start; (void)end; (void)uuid; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_gattc_discover_descriptors(uint16_t conn, uint16_t start, uint16_t end,
                                       const bb_uuid_t *uuid)
{
    (void)conn; (void)start; (void)end; (void)uuid; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_gattc_read(uint16_t conn, uint16_t value_handle)
{
    (void)conn; (void)value_handle; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_gattc_write(uint16_t conn, uint16_t value_handle, const uint8_t *data, uint16_t len,
                        bool with_response)
{
    (void)conn; (void)value_handle; (void)data; (void)len; (void)with_response;
    return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_gattc_exchange_mtu(uint16_t conn) { (void)conn; return -BB_STATUS_EOPNOTSUPP; }

int bb_port_l2cap_listen(uint16_t psm, uint16_t mtu) { (void)psm; (void)mtu; return -BB_STATUS_EOPNOTSUPP; }
int bb_port_l2cap_connect(uint16_t conn, uint16_t psm, uint16_t mtu)
{
    (void)conn; (void)psm; (void)mtu; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_l2cap_send(uint16_t conn, uint16_t cid, const uint8_t *data, uint16_t len)
{
    (void)conn; (void)cid; (void)data; (void)len; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_l2cap_disconnect(uint16_t conn, uint16_t cid) { (void)conn; (void)cid; return -BB_STATUS_EOPNOTSUPP; }

int bb_port_gap_pair(uint16_t conn) { (void)conn; return -BB_STATUS_EOPNOTSUPP; }
int bb_port_gap_passkey(uint16_t conn, uint8_t action, uint32_t passkey)
{
    (void)conn; (void)action; (void)passkey; return -BB_STATUS_EOPNOTSUPP;
}
int bb_port_sec_erase_bonds(void) { return 0; }
int bb_port_sec_state(uint16_t conn, bool *encrypted, bool *authenticated, bool *bonded,
                      uint8_t *key_size)
{
    (void)conn; (void)encrypted; (void)authenticated; (void)bonded; (void)key_size;
    return -BB_STATUS_EOPNOTSUPP;
}

void bb_port_answer(bb_question_kind_t kind, uint32_t port_ref, const bb_answer_t *answer)
{
    (void)kind; (void)port_ref; (void)answer;
}
