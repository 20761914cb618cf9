# Temperature sensor peripheral with aioble (GATT server, notify).
#
# Advertises the Environmental Sensing service (0x181A) with a Temperature characteristic
# (0x2A6E: sint16, 0.01 degC, read + notify), waits for a central, then writes a new reading
# every 200 ms with send_update=True (subscribed centrals get a notification) until the
# central disconnects.
#
#   blebridge run --port sim:sensor examples/aioble/sensor_peripheral.py
#   python examples/aioble/sensor_peripheral.py --port sim:sensor
# (and unchanged on a MicroPython board with aioble installed).

import sys

try:
    import aioble       # on a board, or under `blebridge run`
    import bluetooth
    UUID = bluetooth.UUID
except ImportError:     # plain CPython: blebridge's aioble, on the board given by --port
    from blebridge import aioble
    from blebridge.micropython import UUID
    if "--port" in sys.argv:
        aioble.use(sys.argv[sys.argv.index("--port") + 1])

import asyncio
import random
import struct

ENV_SENSE_UUID = UUID(0x181A)
TEMP_UUID = UUID(0x2A6E)
APPEARANCE_THERMOMETER = 768
ADV_INTERVAL_US = 250_000
NOTIFY_INTERVAL_MS = 200

service = aioble.Service(ENV_SENSE_UUID)
temperature = aioble.Characteristic(service, TEMP_UUID, read=True, notify=True,
                                     initial=struct.pack("<h", 2450))
aioble.register_services(service)


async def sense(connection):
    t = 24.5
    while connection.is_connected():
        t += random.uniform(-0.5, 0.5)
        temperature.write(struct.pack("<h", int(t * 100)), send_update=True)
        await asyncio.sleep(NOTIFY_INTERVAL_MS / 1000)


async def main():
    print("advertising")
    connection = await aioble.advertise(ADV_INTERVAL_US, name="blebridge-temp",
                                        services=[ENV_SENSE_UUID],
                                        appearance=APPEARANCE_THERMOMETER)
    print("connection from", connection.device)
    sensing = asyncio.create_task(sense(connection))
    await connection.disconnected()
    sensing.cancel()
    print("disconnected")


try:
    asyncio.run(main())
finally:
    aioble.stop()
