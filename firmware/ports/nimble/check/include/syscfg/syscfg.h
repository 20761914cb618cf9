/*
 * SYNTAX CHECK ONLY (make firmware-check-nimble): never part of a firmware build.
 *
 * The NimBLE settings our ESP-IDF build uses (sdkconfig.defaults: CONFIG_BT_NIMBLE_*), as the
 * MYNEWT_VAL_* names NimBLE's headers test; everything else falls through to the defaults of the
 * NimBLE checkout (porting/nimble/include/syscfg/syscfg.h, which only defines what is unset).
 * BB_CHECK_EXT_ADV=1 checks the ESP32-S3 variant built with CONFIG_BT_NIMBLE_EXT_ADV.
 */
#ifndef BB_CHECK_SYSCFG_H
#define BB_CHECK_SYSCFG_H

#define MYNEWT_VAL_BLE_ROLE_CENTRAL (1)
#define MYNEWT_VAL_BLE_ROLE_PERIPHERAL (1)
#define MYNEWT_VAL_BLE_ROLE_OBSERVER (1)
#define MYNEWT_VAL_BLE_ROLE_BROADCASTER (1)
#define MYNEWT_VAL_BLE_MAX_CONNECTIONS (4)
#define MYNEWT_VAL_BLE_L2CAP_COC_MAX_NUM (4)
#define MYNEWT_VAL_BLE_SM_LEGACY (1)
#define MYNEWT_VAL_BLE_SM_SC (1)

#if defined(BB_CHECK_EXT_ADV) && BB_CHECK_EXT_ADV
#define MYNEWT_VAL_BLE_EXT_ADV (1)
#define MYNEWT_VAL_BLE_EXT_ADV_MAX_SIZE (251)
#define MYNEWT_VAL_BLE_MULTI_ADV_INSTANCES (1)
#else
#define MYNEWT_VAL_BLE_EXT_ADV (0)
#endif /* BB_CHECK_EXT_ADV */

#endif /* BB_CHECK_SYSCFG_H */

#include_next <syscfg/syscfg.h>
