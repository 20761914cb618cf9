# L2CAP receiver with aioble (peripheral, connection-oriented channel).
#
# Advertises as "blebridge-l2cap", accepts one L2CAP channel on PSM 0x81, receives 65536
# bytes (the pattern i & 0xFF) and says how many arrived and how many were wrong.
# The peer: l2cap_sender.py.
#
#   blebridge run --port sim:rx examples/aioble/l2cap_receiver.py
#   python examples/aioble/l2cap_receiver.py --port sim:rx

import sys

try:
    import aioble
except ImportError:
    from blebridge import aioble
    if "--port" in sys.argv:
        aioble.use(sys.argv[sys.argv.index("--port") + 1])

import asyncio

PSM = 0x81
MTU = 512
TOTAL = 65536
WAIT_MS = 10_000


async def main():
    print("advertising")
    connection = await aioble.advertise(250_000, name="blebridge-l2cap")
    print("connection from", connection.device)
    channel = await connection.l2cap_accept(PSM, MTU, timeout_ms=WAIT_MS)
    buf = bytearray(2 * MTU)
    received = wrong = 0
    while received < TOTAL:
        n = await channel.recvinto(buf, timeout_ms=WAIT_MS)
        for i in range(n):
            if buf[i] != (received + i) & 0xFF:
                wrong += 1
        received += n
    print("received {} bytes, {} wrong".format(received, wrong))
    await channel.disconnected(timeout_ms=WAIT_MS)
    await connection.disconnected(timeout_ms=WAIT_MS)


try:
    asyncio.run(main())
finally:
    aioble.stop()
