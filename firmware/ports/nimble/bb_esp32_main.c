/*
 * ESP-IDF half of port `nimble`: boot, the core task, the host link, and the ESP-IDF calls the
 * NimBLE half needs (bb_nimble_glue.h). The host link is UART0 through the board's USB-UART
 * bridge on ESP32 DevKits and the USB Serial/JTAG controller on ESP32-S3.
 *
 * Tasks (no heap of ours: every task, stack, stream and semaphore is static):
 *   rx task    reads the host link and pushes bytes into a stream buffer, then wakes the core.
 *   core task  the only caller of bb_core_*; wakes on host bytes, on events queued by the NimBLE
 *              host task (bb_port_critical_exit notifies it) or every BB_CORE_IDLE_MS to expire
 *              questions.
 *   NimBLE host task (nimble_port_freertos_init) runs every NimBLE callback.
 *
 * Not compiled by `make firmware-check`: it needs the ESP-IDF headers (PlatformIO builds it).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/stream_buffer.h"
#include "freertos/task.h"

#include "esp_bt.h"
#include "esp_log.h"
#include "esp_random.h"
#include "esp_timer.h"
#include "nvs_flash.h"
#include "sdkconfig.h"

#include "nimble/nimble_port.h"
#include "nimble/nimble_port_freertos.h"

#include "bb_config.h"
#include "bb_port.h"
#include "bb_proto.h"
#include "bb_nimble_glue.h"

#if CONFIG_IDF_TARGET_ESP32S3
#include "driver/usb_serial_jtag.h"
#define BB_LINK_USB_SERIAL_JTAG 1
#else
#include "driver/uart.h"
#define BB_LINK_USB_SERIAL_JTAG 0
#endif /* CONFIG_IDF_TARGET_ESP32S3 */

#ifndef BB_UART_BAUD
#define BB_UART_BAUD 921600        /* bit/s, 8N1; = host DEFAULT_BAUDRATE (transport/serial_port.py) */
#endif
#define BB_UART_PORT UART_NUM_0
#define BB_LINK_DRIVER_BUF 2048    /* bytes of the ESP-IDF driver's own RX and TX ring buffers */
#define BB_RX_CHUNK 256            /* bytes moved per read */
#define BB_TX_TIMEOUT_MS 20        /* a host that does not read: give the core its turn back */
#define BB_CORE_IDLE_MS 5          /* wake-up period of the core task with nothing to do */
#define BB_CORE_STACK_BYTES 6144
#define BB_RX_STACK_BYTES 3072
#define BB_CORE_PRIORITY 5
#define BB_RX_PRIORITY 6           /* above the core: never let the driver's buffer overflow */

static portMUX_TYPE s_mux = portMUX_INITIALIZER_UNLOCKED;
static TaskHandle_t s_core_task;
static bool s_host_running;

static uint8_t s_rx_storage[BB_NIMBLE_RX_STREAM_BYTES + 1]; /* FreeRTOS needs one spare byte */
static StaticStreamBuffer_t s_rx_stream_struct;
static StreamBufferHandle_t s_rx_stream;
static StaticSemaphore_t s_answer_sem_struct;
static SemaphoreHandle_t s_answer_sem;
static StaticSemaphore_t s_events_hold_struct;
static SemaphoreHandle_t s_events_hold; /* bb_nimble_events_hold: the core task drains outside it */
static StaticTask_t s_core_tcb, s_rx_tcb;
static StackType_t s_core_stack[BB_CORE_STACK_BYTES / sizeof(StackType_t)];
static StackType_t s_rx_stack[BB_RX_STACK_BYTES / sizeof(StackType_t)];
static uint32_t s_boot_id;

/* ---- platform (bb_port.h) --------------------------------------------------------------- */

uint32_t bb_port_millis(void)
{
    return (uint32_t)(esp_timer_get_time() / 1000);
}

uint32_t bb_port_boot_id(void)
{
    return s_boot_id;
}

void bb_port_critical_enter(void)
{
    portENTER_CRITICAL(&s_mux);
}

void bb_port_critical_exit(void)
{
    portEXIT_CRITICAL(&s_mux);
    /* The NimBLE host task queues events under this lock: wake the core to send them. */
    if (s_core_task != NULL && xTaskGetCurrentTaskHandle() != s_core_task) {
        xTaskNotifyGive(s_core_task);
    }
}

int bb_port_transport_write(const uint8_t *buf, size_t len)
{
#if BB_LINK_USB_SERIAL_JTAG
    int n = usb_serial_jtag_write_bytes(buf, len, pdMS_TO_TICKS(BB_TX_TIMEOUT_MS));
#else
    int n = uart_write_bytes(BB_UART_PORT, buf, len);
#endif
    return n < 0 ? -(int)BB_STATUS_EIO : n;
}

static size_t link_read(uint8_t *buf, size_t len)
{
#if BB_LINK_USB_SERIAL_JTAG
    int n = usb_serial_jtag_read_bytes(buf, len, portMAX_DELAY);
    return n > 0 ? (size_t)n : 0;
#else
    /* uart_read_bytes waits for all `len` bytes: wait for one, then take what is buffered. */
    int n = uart_read_bytes(BB_UART_PORT, buf, 1, portMAX_DELAY);
    if (n <= 0) {
        return 0;
    }
    size_t avail = 0;
    uart_get_buffered_data_len(BB_UART_PORT, &avail);
    if (avail > len - 1) {
        avail = len - 1;
    }
    int m = avail ? uart_read_bytes(BB_UART_PORT, buf + 1, avail, 0) : 0;
    return 1u + (m > 0 ? (size_t)m : 0u);
#endif
}

static int link_init(void)
{
#if BB_LINK_USB_SERIAL_JTAG
    usb_serial_jtag_driver_config_t cfg = {
        .rx_buffer_size = BB_LINK_DRIVER_BUF,
        .tx_buffer_size = BB_LINK_DRIVER_BUF,
    };
    return usb_serial_jtag_driver_install(&cfg) == ESP_OK ? 0 : -(int)BB_STATUS_EIO;
#else
    const uart_config_t cfg = {
        .baud_rate = BB_UART_BAUD,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    if (uart_driver_install(BB_UART_PORT, BB_LINK_DRIVER_BUF, BB_LINK_DRIVER_BUF, 0, NULL, 0) != ESP_OK ||
        uart_param_config(BB_UART_PORT, &cfg) != ESP_OK) {
        return -(int)BB_STATUS_EIO;
    }
    return 0;
#endif
}

int bb_port_init(void)
{
    /* The host link carries frames only: ESP-IDF's own log output would split them. */
    esp_log_level_set("*", ESP_LOG_NONE);
    esp_err_t err = nvs_flash_init(); /* the BT controller keeps PHY calibration in NVS */
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        nvs_flash_erase();
        err = nvs_flash_init();
    }
    if (err != ESP_OK) {
        return -(int)BB_STATUS_EIO;
    }
    s_boot_id = esp_random();
    s_rx_stream = xStreamBufferCreateStatic(BB_NIMBLE_RX_STREAM_BYTES, 1, s_rx_storage, &s_rx_stream_struct);
    s_answer_sem = xSemaphoreCreateBinaryStatic(&s_answer_sem_struct);
    s_events_hold = xSemaphoreCreateMutexStatic(&s_events_hold_struct);
    bb_nimble_init();
    return link_init();
}

/* ---- glue for the NimBLE half ----------------------------------------------------------- */

static void host_task(void *param)
{
    (void)param;
    nimble_port_run(); /* returns after nimble_port_stop() */
    nimble_port_freertos_deinit();
}

int bb_nimble_stack_init(void)
{
    return nimble_port_init() == ESP_OK ? 0 : -(int)BB_STATUS_EIO;
}

int bb_nimble_stack_run(void)
{
    nimble_port_freertos_init(host_task);
    s_host_running = true;
    return 0;
}

int bb_nimble_stack_stop(void)
{
    if (s_host_running) {
        /* nimble_port_stop waits for the host task, which would never answer if not started. */
        if (nimble_port_stop() != 0) {
            return -(int)BB_STATUS_EIO;
        }
        s_host_running = false;
    }
    bb_nimble_host_stopped();
    return nimble_port_deinit() == ESP_OK ? 0 : -(int)BB_STATUS_EIO;
}

void bb_nimble_answer_drain(void)
{
    xSemaphoreTake(s_answer_sem, 0);
}

bool bb_nimble_answer_wait(uint32_t timeout_ms)
{
    return xSemaphoreTake(s_answer_sem, pdMS_TO_TICKS(timeout_ms)) == pdTRUE;
}

void bb_nimble_answer_signal(void)
{
    xSemaphoreGive(s_answer_sem);
}

void bb_nimble_events_hold(void)
{
    xSemaphoreTake(s_events_hold, portMAX_DELAY);
}

void bb_nimble_events_release(void)
{
    xSemaphoreGive(s_events_hold);
    xTaskNotifyGive(s_core_task);
}

void bb_nimble_sleep_ms(uint32_t ms)
{
    vTaskDelay(pdMS_TO_TICKS(ms) ? pdMS_TO_TICKS(ms) : 1);
}

void bb_nimble_random(void *buf, size_t len)
{
    esp_fill_random(buf, len);
}

int bb_nimble_set_adv_tx_power(int8_t dbm)
{
    /* Levels every ESP32 and ESP32-S3 controller has, in 3 dB steps. */
    static const struct {
        int8_t dbm;
        esp_power_level_t level;
    } levels[] = {
        {-12, ESP_PWR_LVL_N12}, {-9, ESP_PWR_LVL_N9}, {-6, ESP_PWR_LVL_N6}, {-3, ESP_PWR_LVL_N3},
        {0, ESP_PWR_LVL_N0},    {3, ESP_PWR_LVL_P3},  {6, ESP_PWR_LVL_P6},  {9, ESP_PWR_LVL_P9},
    };
    esp_power_level_t level = levels[0].level;
    for (unsigned i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (levels[i].dbm <= dbm) {
            level = levels[i].level;
        }
    }
    return esp_ble_tx_power_set(ESP_BLE_PWR_TYPE_ADV, level) == ESP_OK ? 0 : -(int)BB_STATUS_EIO;
}

/* ---- tasks ------------------------------------------------------------------------------ */

static void rx_task(void *param)
{
    (void)param;
    static uint8_t buf[BB_RX_CHUNK];
    for (;;) {
        size_t n = link_read(buf, sizeof(buf));
        if (n > 0) {
            xStreamBufferSend(s_rx_stream, buf, n, portMAX_DELAY);
            xTaskNotifyGive(s_core_task);
        }
    }
}

static void core_task(void *param)
{
    (void)param;
    static uint8_t buf[BB_RX_CHUNK];
    for (;;) {
        /* Never 0 ticks when idle (that would spin): at least one tick. */
        TickType_t idle = pdMS_TO_TICKS(BB_CORE_IDLE_MS) ? pdMS_TO_TICKS(BB_CORE_IDLE_MS) : 1;
        ulTaskNotifyTake(pdTRUE, bb_core_tx_pending() ? 0 : idle);
        size_t n;
        while ((n = xStreamBufferReceive(s_rx_stream, buf, sizeof(buf), 0)) > 0) {
            bb_core_rx(buf, n);
        }
        bb_nimble_poll();
        xSemaphoreTake(s_events_hold, portMAX_DELAY); /* never between a held pair of events */
        bb_core_poll();
        xSemaphoreGive(s_events_hold);
    }
}

void app_main(void)
{
    int rc = bb_port_init();
    bb_core_init();
    if (rc != 0) {
        bb_log(0, "bb_port_init failed: the host link or NVS could not be set up");
    }
    s_core_task = xTaskCreateStatic(core_task, "bb_core", BB_CORE_STACK_BYTES, NULL, BB_CORE_PRIORITY,
                                    s_core_stack, &s_core_tcb);
    xTaskCreateStatic(rx_task, "bb_rx", BB_RX_STACK_BYTES, NULL, BB_RX_PRIORITY, s_rx_stack, &s_rx_tcb);
}
