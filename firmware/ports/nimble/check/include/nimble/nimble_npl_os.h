/*
 * SYNTAX CHECK ONLY (make firmware-check-nimble): never part of a firmware build.
 *
 * The OS types NimBLE's portable layer (nimble/nimble_npl.h) expects from an OS port. On the
 * board they come from ESP-IDF's FreeRTOS NPL (porting/npl/freertos), whose header needs the
 * FreeRTOS headers; for a syntax check any complete types with the same names do.
 */
#ifndef BB_CHECK_NIMBLE_NPL_OS_H
#define BB_CHECK_NIMBLE_NPL_OS_H

#include <stdbool.h>
#include <stdint.h>

#define BLE_NPL_OS_ALIGNMENT 4
#define BLE_NPL_TIME_FOREVER UINT32_MAX

typedef uint32_t ble_npl_time_t;
typedef int32_t ble_npl_stime_t;

struct ble_npl_event {
    bool queued;
    ble_npl_event_fn *fn;
    void *arg;
};

struct ble_npl_eventq {
    void *q;
};

struct ble_npl_callout {
    void *handle;
    struct ble_npl_eventq *evq;
    struct ble_npl_event ev;
};

struct ble_npl_mutex {
    void *handle;
};

struct ble_npl_sem {
    void *handle;
};

#endif /* BB_CHECK_NIMBLE_NPL_OS_H */
