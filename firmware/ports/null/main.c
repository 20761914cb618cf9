/*
 * Null port main loop: what a board's main() does, minus the radio and the USB driver. Bytes
 * come from a volatile "data register" and every bb_on_* callback is referenced, so that
 * --gc-sections keeps the whole core and the size build measures what a real port links.
 */
#include <stdint.h>

#include "bb_port.h"

typedef void (*any_fn_t)(void); /* void (*)(void) is the generic function pointer type */

static const any_fn_t port_callbacks[] = {
    (any_fn_t)bb_on_central_connect, (any_fn_t)bb_on_central_disconnect,
    (any_fn_t)bb_on_peripheral_connect, (any_fn_t)bb_on_peripheral_disconnect,
    (any_fn_t)bb_on_advertise_done, (any_fn_t)bb_on_scan_result, (any_fn_t)bb_on_scan_done,
    (any_fn_t)bb_on_connection_update, (any_fn_t)bb_on_gatts_write,
    (any_fn_t)bb_on_gatts_indicate_done, (any_fn_t)bb_on_mtu_exchanged,
    (any_fn_t)bb_on_gattc_service_result, (any_fn_t)bb_on_gattc_service_done,
    (any_fn_t)bb_on_gattc_characteristic_result, (any_fn_t)bb_on_gattc_characteristic_done,
    (any_fn_t)bb_on_gattc_descriptor_result, (any_fn_t)bb_on_gattc_descriptor_done,
    (any_fn_t)bb_on_gattc_read_result, (any_fn_t)bb_on_gattc_read_done,
    (any_fn_t)bb_on_gattc_write_done, (any_fn_t)bb_on_gattc_notify, (any_fn_t)bb_on_gattc_indicate,
    (any_fn_t)bb_on_l2cap_connect, (any_fn_t)bb_on_l2cap_disconnect, (any_fn_t)bb_on_l2cap_recv,
    (any_fn_t)bb_on_l2cap_send_ready, (any_fn_t)bb_on_encryption_update,
    (any_fn_t)bb_on_passkey_action, (any_fn_t)bb_on_question_read,
    (any_fn_t)bb_on_question_l2cap_accept, (any_fn_t)bb_on_question_get_secret,
    (any_fn_t)bb_on_question_set_secret, (any_fn_t)bb_log, (any_fn_t)bb_core_gatts_value,
    (any_fn_t)bb_core_tx_pending,
};

static volatile uint8_t rx_data_register;
volatile any_fn_t bb_null_callback_sink;

int main(void)
{
    bb_port_init();
    bb_core_init();
    for (unsigned i = 0;; i++) {
        uint8_t b = rx_data_register;
        bb_core_rx(&b, 1);
        bb_core_poll();
        bb_null_callback_sink = port_callbacks[i % (sizeof(port_callbacks) / sizeof(port_callbacks[0]))];
    }
}
