/*
 * Boundary between the NimBLE half of the port (bb_port_nimble.c: host API only, checked against
 * apache/mynewt-nimble and espressif/esp-nimble headers) and the ESP-IDF half (bb_esp32_main.c: FreeRTOS tasks, UART or
 * USB Serial/JTAG, controller start/stop, TX power). Nothing here is a port boundary
 * function; bb_port.h stays the only contract with the core.
 *
 * Threads: the core task owns every bb_core_* / bb_port_* call; the NimBLE host task runs every
 * NimBLE callback. Functions say which task may call them.
 */
#ifndef BB_NIMBLE_GLUE_H
#define BB_NIMBLE_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- provided by bb_esp32_main.c ------------------------------------------------------- */

/* Controller and host init (nimble_port_init); the host task is not running yet, so ble_hs_cfg
 * and the GATT table may be set up between this and bb_nimble_stack_run(). Core task. */
int bb_nimble_stack_init(void);
/* Start the NimBLE host task (nimble_port_freertos_init). Core task. */
int bb_nimble_stack_run(void);
/* Stop the host task (terminates every connection) and release the controller. Core task. */
int bb_nimble_stack_stop(void);

/* One waiter (the host task) for one answer at a time. wait returns true when signalled within
 * timeout_ms, false on timeout; drain forgets a signal left over from an abandoned question. */
void bb_nimble_answer_drain(void);
bool bb_nimble_answer_wait(uint32_t timeout_ms);
void bb_nimble_answer_signal(void);

/* Events the host task queues between hold and release reach the host in one frame: the core
 * task does not drain the event queue in between (a read result and its done, which
 * MicroPython delivers back to back). Host task; never nested; the core task takes the same
 * hold around bb_core_poll. */
void bb_nimble_events_hold(void);
void bb_nimble_events_release(void);

void bb_nimble_sleep_ms(uint32_t ms);
void bb_nimble_random(void *buf, size_t len);
/* Nearest supported advertising TX power at or below dbm; 0 or a negative BB_STATUS errno. */
int bb_nimble_set_adv_tx_power(int8_t dbm);

/* ---- provided by bb_port_nimble.c ------------------------------------------------------ */

/* Once at boot from bb_port_init(), before bb_core_init(); NimBLE is not initialised yet, so
 * nothing here may use the NPL (ESP-IDF's NPL calls through a table nimble_port_init fills). */
void bb_nimble_init(void);
/* Every core-loop iteration, from the core task: retries work held back by flow control. */
void bb_nimble_poll(void);
/* From bb_nimble_stack_stop, after the host task has ended and before nimble_port_deinit:
 * releases the NPL objects of this half (they live in pools nimble_port_deinit frees). */
void bb_nimble_host_stopped(void);

#endif /* BB_NIMBLE_GLUE_H */
