/*
 * SYNTAX CHECK ONLY (make firmware-check-nimble): never part of a firmware build.
 *
 * espressif/esp-nimble's headers use ESP-IDF's esp_err_t (nimble_port.h includes esp_err.h,
 * transport.h uses the type without including it); port.mk force-includes this stand-in when
 * the checked tree is esp-nimble. On the board the type comes from ESP-IDF's esp_common.
 */
#ifndef BB_CHECK_ESP_ERR_H
#define BB_CHECK_ESP_ERR_H

typedef int esp_err_t;

#define ESP_OK 0
#define ESP_FAIL (-1)

#endif /* BB_CHECK_ESP_ERR_H */
