# L2CAP sender with aioble (central, connection-oriented channel).
#
# Finds "blebridge-l2cap", connects, opens an L2CAP channel on PSM 0x81 and sends 65536 bytes
# (the pattern i & 0xFF), then closes the channel and disconnects. The peer: l2cap_receiver.py.
#
#   blebridge run --port sim:tx examples/aioble/l2cap_sender.py
#   python examples/aioble/l2cap_sender.py --port sim:tx

import sys

try:
    import aioble
except ImportError:
    from blebridge import aioble
    if "--port" in sys.argv:
        aioble.use(sys.argv[sys.argv.index("--port") + 1])

import asyncio
import time

PSM = 0x81
MTU = 512
TOTAL = 65536
WAIT_MS = 10_000


async def find(name):
    async with aioble.scan(WAIT_MS, interval_us=30_000, window_us=30_000, active=True) as scanner:
        async for result in scanner:
            if result.name() == name:
                return result.device
    return None


async def main():
    device = await find("blebridge-l2cap")
    if device is None:
        print("receiver not found")
        return 1
    connection = await device.connect(timeout_ms=WAIT_MS)
    channel = await connection.l2cap_connect(PSM, MTU, timeout_ms=WAIT_MS)
    data = bytes(i & 0xFF for i in range(TOTAL))
    t0 = time.time()
    await channel.send(data, timeout_ms=WAIT_MS)
    await channel.flush(timeout_ms=WAIT_MS)
    print("sent {} bytes in {:.2f} s".format(TOTAL, time.time() - t0))
    await channel.disconnect()
    await connection.disconnect()
    return 0


try:
    status = asyncio.run(main())
finally:
    aioble.stop()
sys.exit(status)
