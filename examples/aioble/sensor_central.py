# Temperature sensor central with aioble (scan, connect, GATT client, notifications).
#
# Scans for a device advertising the Environmental Sensing service (0x181A), connects,
# subscribes to its Temperature characteristic (0x2A6E) and prints 5 notified readings, then
# disconnects. The peer: sensor_peripheral.py.
#
#   blebridge run --port sim:client examples/aioble/sensor_central.py
#   python examples/aioble/sensor_central.py --port sim:client

import sys

try:
    import aioble
    import bluetooth
    UUID = bluetooth.UUID
except ImportError:
    from blebridge import aioble
    from blebridge.micropython import UUID
    if "--port" in sys.argv:
        aioble.use(sys.argv[sys.argv.index("--port") + 1])

import asyncio
import struct

ENV_SENSE_UUID = UUID(0x181A)
TEMP_UUID = UUID(0x2A6E)
READINGS = 5
SCAN_MS = 10_000
WAIT_MS = 5_000


async def find_sensor():
    async with aioble.scan(SCAN_MS, interval_us=30_000, window_us=30_000, active=True) as scanner:
        async for result in scanner:
            if ENV_SENSE_UUID in result.services():
                return result.device
    return None


async def main():
    device = await find_sensor()
    if device is None:
        print("no sensor found")
        return 1
    print("connecting to", device)
    connection = await device.connect(timeout_ms=WAIT_MS)
    async with connection:
        service = await connection.service(ENV_SENSE_UUID)
        temperature = await service.characteristic(TEMP_UUID)
        print("first read: {:.2f} degC".format(struct.unpack("<h", await temperature.read())[0] / 100))
        await temperature.subscribe(notify=True)
        for _ in range(READINGS):
            data = await temperature.notified(timeout_ms=WAIT_MS)
            print("notified temperature {:.2f} degC".format(struct.unpack("<h", data)[0] / 100))
    print("done")
    return 0


try:
    status = asyncio.run(main())
finally:
    aioble.stop()
sys.exit(status)
