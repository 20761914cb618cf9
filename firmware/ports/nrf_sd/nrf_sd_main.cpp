/*
 * nrf_sd port: the Arduino glue (Adafruit nRF52 core) — the only C++ file of the port.
 *
 * setup() starts the SoftDevice and the core; loop() moves bytes from TinyUSB CDC (`Serial`) to
 * the core, pulls SoftDevice events, and lets the core send. The core's frames go out through
 * bb_port_transport_write, which never blocks: it writes what the CDC FIFO can take now.
 */
#include <Arduino.h>

extern "C" {
#include "bb_nrf_sd.h"
}

/* Bytes moved from the CDC RX FIFO per read call (stack buffer; the loop task has 4 KB). */
static const size_t kRxChunk = 64;

extern "C" int bb_port_transport_write(const uint8_t *buf, size_t len)
{
    if (!Serial) {
        return 0; /* no host has the port open (DTR low): the core keeps the bytes */
    }
    int room = Serial.availableForWrite();
    if (room <= 0) {
        return 0;
    }
    size_t n = len < (size_t)room ? len : (size_t)room;
    size_t written = Serial.write(buf, n);
    Serial.flush(); /* hand a partial USB packet to the host now, not at the next full one */
    return (int)written;
}

extern "C" uint32_t bb_port_millis(void)
{
    return millis();
}

extern "C" void bb_nrf_sd_sleep_1ms(void)
{
    delay(1); /* FreeRTOS: the USB task runs meanwhile; SoftDevice events wait in its queue */
}

void setup()
{
    Serial.begin(115200); /* the rate is ignored by USB CDC */
    if (bb_port_init() != 0) {
        /* Without the SoftDevice the core still answers (radio calls then fail with errors). */
    }
    bb_core_init();
}

void loop()
{
    uint8_t rx[kRxChunk];
    int avail;
    while ((avail = Serial.available()) > 0) {
        size_t n = (size_t)avail < sizeof rx ? (size_t)avail : sizeof rx;
        n = Serial.readBytes(rx, n);
        if (n == 0) {
            break;
        }
        bb_core_rx(rx, n);
    }
    bb_nrf_sd_poll();
    bb_core_poll();
    if (!bb_core_tx_pending()) {
        delay(1); /* idle: give the CPU to the USB and SoftDevice tasks for one tick */
    }
}
