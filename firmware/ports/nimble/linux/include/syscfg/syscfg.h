/*
 * NimBLE settings of the native simulated NimBLE board (make nimble-sim): the ESP32-S3
 * configuration of sdkconfig.defaults + sdkconfig.esp32s3.defaults as MYNEWT_VAL_* names, plus
 * what the Linux build needs (socket HCI transport to the air's controller, host started by the
 * port). Everything else falls through to the defaults of the checkout's Linux example
 * (porting/examples/linux/include/syscfg/syscfg.h, which defines only what is unset).
 */
#ifndef BB_NIMBLE_LINUX_SYSCFG_H
#define BB_NIMBLE_LINUX_SYSCFG_H

#define MYNEWT_VAL_BLE_ROLE_CENTRAL (1)
#define MYNEWT_VAL_BLE_ROLE_PERIPHERAL (1)
#define MYNEWT_VAL_BLE_ROLE_OBSERVER (1)
#define MYNEWT_VAL_BLE_ROLE_BROADCASTER (1)
#define MYNEWT_VAL_BLE_MAX_CONNECTIONS (4)
#define MYNEWT_VAL_BLE_L2CAP_COC_MAX_NUM (4)
#define MYNEWT_VAL_BLE_SM_LEGACY (1)
#define MYNEWT_VAL_BLE_SM_SC (1)
#define MYNEWT_VAL_BLE_SM_BONDING (1)
#define MYNEWT_VAL_BLE_ATT_PREFERRED_MTU (515)
#define MYNEWT_VAL_BLE_GATT_MAX_PROCS (8)

/* ESP32-S3: extended advertising API, one set; legacy PDUs through it (review finding 9). The
 * air's controller reports scans as extended reports, which only this API receives. */
#define MYNEWT_VAL_BLE_EXT_ADV (1)
#define MYNEWT_VAL_BLE_EXT_ADV_MAX_SIZE (251)
#define MYNEWT_VAL_BLE_MULTI_ADV_INSTANCES (1)

/* HCI events carry extended advertising reports of up to 251 data bytes. */
#define MYNEWT_VAL_BLE_TRANSPORT_EVT_SIZE (257)
#define MYNEWT_VAL_BLE_TRANSPORT_EVT_COUNT (8)
#define MYNEWT_VAL_BLE_TRANSPORT_EVT_DISCARDABLE_COUNT (32)
#define MYNEWT_VAL_BLE_TRANSPORT_ACL_COUNT (24)
/* Packets from the controller waiting for the host task. The simulated air delivers a burst
 * (notifications, Write Commands) with no air time between its packets, where a real link
 * gives a few per connection interval; NimBLE's socket transport drops a packet it has no buffer
 * for (ble_hci_socket.c, stat imem), so this holds several of the bursts tests send (48). */
#define MYNEWT_VAL_BLE_TRANSPORT_ACL_FROM_LL_COUNT (256)
#define MYNEWT_VAL_BLE_TRANSPORT_ACL_FROM_HS_COUNT (24)
/* ATT and L2CAP signalling buffers (mbufs from msys): room for several long values in flight. */
#define MYNEWT_VAL_MSYS_1_BLOCK_COUNT (64)
#define MYNEWT_VAL_MSYS_1_BLOCK_SIZE (292)

/* The port starts the host (ble_hs_sched_start) when the radio is turned on. */
#define MYNEWT_VAL_BLE_HS_AUTO_START (0)

/* H4 over TCP to 127.0.0.1, port given at run time (ble_hci_sock_set_device). */
#define MYNEWT_VAL_BLE_SOCK_TYPE__linux_blue (0)
#define MYNEWT_VAL_BLE_SOCK_TYPE__linux_tcp (1)
#define MYNEWT_VAL_BLE_SOCK_TYPE__nuttx (0)

#endif /* BB_NIMBLE_LINUX_SYSCFG_H */

#include_next <syscfg/syscfg.h>
