/*
 * SYNTAX CHECK ONLY (make firmware-check-nimble): never part of a firmware build.
 *
 * NimBLE's log macros expand to one function per module and level, which an OS port supplies;
 * here they discard their arguments.
 */
#ifndef BB_CHECK_NIMBLE_NPL_OS_LOG_H
#define BB_CHECK_NIMBLE_NPL_OS_LOG_H

#define BLE_NPL_LOG_IMPL(lvl)                                                                  \
    static inline void _BLE_NPL_LOG_CAT(BLE_NPL_LOG_MODULE, _BLE_NPL_LOG_CAT(_, lvl))(const char *fmt, \
                                                                                     ...)        \
    {                                                                                          \
        (void)fmt;                                                                             \
    }

#endif /* BB_CHECK_NIMBLE_NPL_OS_LOG_H */
