"""Zerynth's nRF52 BLE driver, served by blebridge: ``init()`` binds ``wireless.ble`` to the
board at ``--port`` (env BLEBRIDGE_PORT), with this driver's ways (passkeys as 6-digit str)."""


def init():
    from blebridge.zerynth.ble import init_driver
    init_driver("nrf52")
