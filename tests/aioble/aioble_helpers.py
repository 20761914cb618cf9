"""What the aioble end-to-end tests share: UUIDs, a connected pair, a bounded event loop."""
import asyncio

from blebridge import aioble
from blebridge.micropython import UUID

#: A test's whole coroutine must finish within this (s): generous, the machine may be loaded.
TEST_TIMEOUT_S = 90.0

SVC = UUID("7e1a0006-5c4b-4d55-9a1e-000000000001")
CHR = UUID("7e1a0006-5c4b-4d55-9a1e-000000000002")
CHR2 = UUID("7e1a0006-5c4b-4d55-9a1e-000000000003")
DSC = UUID("7e1a0006-5c4b-4d55-9a1e-000000000004")
#: Every wait of the tests, ms: long, so a loaded machine does not fail them.
WAIT_MS = 10_000
#: Advertising interval of the tests, µs (the simulator needs an explicit one: SIMULATOR-NOTES).
ADV_US = 20_000


def run(coro, timeout: float = TEST_TIMEOUT_S):
    """Run ``coro`` in a new event loop (each test its own); fail, not hang, after ``timeout`` s."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def connect(peripheral, central, **adv):
    """Advertise on ``peripheral``, connect from ``central``: (peripheral's connection, central's)."""
    advertising = asyncio.create_task(peripheral.advertise(ADV_US, timeout_ms=WAIT_MS, **adv))
    try:
        device = central.Device(*peripheral.config("mac"))
        cconn = await device.connect(timeout_ms=WAIT_MS)
        pconn = await advertising
    except BaseException:
        advertising.cancel()
        raise
    return pconn, cconn


def service(*chars):
    """A Service with characteristics made by ``chars`` (callables taking the service)."""
    svc = aioble.Service(SVC)
    made = [make(svc) for make in chars]
    return svc, made


async def client_characteristic(cconn, uuid=CHR):
    svc = await cconn.service(SVC, timeout_ms=WAIT_MS)
    assert svc is not None
    return await svc.characteristic(uuid, timeout_ms=WAIT_MS)
