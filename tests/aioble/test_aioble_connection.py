"""aioble connections on two boards: advertise, scan, connect, disconnect, MTU, pairing, stop."""
import asyncio

import pytest

from blebridge import aioble
from blebridge.micropython import UUID

from aioble_helpers import ADV_US, SVC, WAIT_MS, connect, run

pytestmark = [pytest.mark.hil, pytest.mark.boards(2)]


def test_advertise_returns_the_connection_of_the_central_that_connected(pair):
    p, c = pair

    async def main():
        pconn, cconn = await connect(p, c)
        assert pconn.device == aioble.Device(*c.config("mac"))
        assert pconn.is_connected() and cconn.is_connected()
    run(main())


def test_advertise_raises_timeout_error_when_no_central_connects(pair):
    p, _ = pair

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await p.advertise(ADV_US, name="lonely", timeout_ms=200)
    run(main())


def test_scan_result_has_the_advertised_name(pair):
    p, c = pair

    async def main():
        adv = asyncio.create_task(p.advertise(ADV_US, name="bulb", timeout_ms=WAIT_MS))
        want = c.Device(*p.config("mac"))
        try:
            async with c.scan(WAIT_MS, 30_000, 30_000) as scanner:
                async for result in scanner:
                    if result.device == want and result.name():
                        return result.name()
        finally:
            adv.cancel()
    assert run(main()) == "bulb"


def test_scan_result_lists_16_32_and_128_bit_services(pair):
    p, c = pair
    uuids = [UUID(0x180F), UUID(0x181A), UUID(b"\x12\x34\x56\x78"), SVC]

    async def main():
        adv = asyncio.create_task(p.advertise(ADV_US, name="MPY", services=uuids, timeout_ms=WAIT_MS))
        want = c.Device(*p.config("mac"))
        try:
            async with c.scan(WAIT_MS, 30_000, 30_000, active=True) as scanner:
                async for result in scanner:
                    found = list(result.services())
                    if result.device == want and len(found) == len(uuids):
                        return found
        finally:
            adv.cancel()
    assert run(main()) == uuids


def test_scan_result_manufacturer_filter_yields_only_that_company(pair):
    p, c = pair
    adv_data = (b"\x02\x01\x06" + b"\x05\xff\x34\x12ab" + b"\x05\xff\x78\x56cd")

    async def main():
        adv = asyncio.create_task(p.advertise(ADV_US, adv_data=adv_data, timeout_ms=WAIT_MS))
        want = c.Device(*p.config("mac"))
        try:
            async with c.scan(WAIT_MS, 30_000, 30_000) as scanner:
                async for result in scanner:
                    if result.device == want and result.adv_data:
                        return list(result.manufacturer()), list(result.manufacturer(0x5678))
        finally:
            adv.cancel()
    everything, only = run(main())
    assert everything == [(0x1234, b"ab"), (0x5678, b"cd")]
    assert only == [(0x5678, b"cd")]


def test_active_scan_combines_advertising_and_scan_response(pair):
    p, c = pair

    async def main():
        adv = asyncio.create_task(p.advertise(ADV_US, adv_data=b"\x02\x01\x06", resp_data=b"\x04\x09abc",
                                              timeout_ms=WAIT_MS))
        want = c.Device(*p.config("mac"))
        try:
            async with c.scan(WAIT_MS, 30_000, 30_000, active=True) as scanner:
                async for result in scanner:
                    if result.device == want and result.resp_data:
                        return result.adv_data, result.resp_data, result.name(), result.connectable
        finally:
            adv.cancel()
    assert run(main()) == (b"\x02\x01\x06", b"\x04\x09abc", "abc", True)


def test_scan_ends_when_its_duration_is_over(pair):
    _, c = pair

    async def main():
        async with c.scan(300, 30_000, 30_000) as scanner:
            async for _ in scanner:
                pass
        return True
    assert run(main())


def test_connect_raises_timeout_error_for_a_device_that_is_not_there(pair):
    _, c = pair

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await c.Device(aioble.ADDR_RANDOM, "c0:ff:ee:00:00:99").connect(timeout_ms=300)
    run(main())


def test_disconnect_is_seen_by_both_sides(pair):
    p, c = pair

    async def main():
        pconn, cconn = await connect(p, c)
        await cconn.disconnect(timeout_ms=WAIT_MS)
        await pconn.disconnected(timeout_ms=WAIT_MS)
        return cconn.is_connected(), pconn.is_connected()
    assert run(main()) == (False, False)


def test_connection_as_context_manager_disconnects_at_exit(pair):
    p, c = pair

    async def main():
        pconn, cconn = await connect(p, c)
        async with cconn:
            pass
        await pconn.disconnected(timeout_ms=WAIT_MS)
        return cconn.is_connected()
    assert run(main()) is False


def test_disconnected_raises_timeout_error_while_still_connected(pair):
    p, c = pair

    async def main():
        pconn, _ = await connect(p, c)
        with pytest.raises(asyncio.TimeoutError):
            await pconn.disconnected(timeout_ms=100)
    run(main())


def test_exchange_mtu_returns_the_agreed_mtu_on_both_sides(pair):
    p, c = pair

    async def main():
        p.config(mtu=185)
        pconn, cconn = await connect(p, c)
        mtu = await cconn.exchange_mtu(185, timeout_ms=WAIT_MS)
        await p.wait(lambda: pconn.mtu is not None, WAIT_MS / 1000)
        return mtu, cconn.mtu, pconn.mtu
    assert run(main()) == (185, 185, 185)


def test_pair_encrypts_and_bonds_the_link(pair):
    p, c = pair

    async def main():
        pconn, cconn = await connect(p, c)
        await cconn.pair(bond=True, timeout_ms=WAIT_MS * 2)
        return cconn.encrypted, cconn.bonded, cconn.key_size
    encrypted, bonded, key_size = run(main())
    assert encrypted and bonded and key_size == 16


def test_timeout_context_raises_timeout_error_when_time_is_up(pair):
    p, c = pair

    async def main():
        _, cconn = await connect(p, c)
        with pytest.raises(asyncio.TimeoutError):
            with cconn.timeout(100):
                await asyncio.sleep(WAIT_MS / 1000)
    run(main())


def test_timeout_context_raises_device_disconnected_when_the_peer_leaves(pair):
    p, c = pair

    async def main():
        pconn, cconn = await connect(p, c)
        leave = asyncio.get_running_loop().call_later(0.2, lambda: asyncio.ensure_future(pconn.disconnect()))
        try:
            with pytest.raises(aioble.DeviceDisconnectedError):
                with cconn.timeout(WAIT_MS):
                    await asyncio.sleep(WAIT_MS / 1000)
        finally:
            leave.cancel()
    run(main())


def test_stop_ends_the_connections(pair):
    p, c = pair

    async def main():
        pconn, cconn = await connect(p, c)
        c.stop()
        await pconn.disconnected(timeout_ms=WAIT_MS)
        return cconn.is_connected()
    assert run(main()) is False


def test_radio_serves_again_after_stop(pair):
    # micropython-lib multitest ble_shutdown: stop, register, advertise and connect again.
    p, c = pair

    async def main():
        reads = []
        for i in range(3):
            svc = aioble.Service(SVC)
            ch = aioble.Characteristic(svc, UUID(0x2A00), read=True)
            p.register_services(svc)
            ch.write(f"periph{i}")
            pconn, cconn = await connect(p, c)
            s = await cconn.service(SVC, timeout_ms=WAIT_MS)
            cc = await s.characteristic(UUID(0x2A00), timeout_ms=WAIT_MS)
            reads.append(await cc.read(timeout_ms=WAIT_MS))
            await cconn.disconnect(timeout_ms=WAIT_MS)
            await pconn.disconnected(timeout_ms=WAIT_MS)
            p.stop()
            c.stop()
        return reads
    assert run(main()) == [b"periph0", b"periph1", b"periph2"]


def test_timeout_context_that_ended_in_time_cancels_nothing_later(pair):
    p, c = pair

    async def main():
        pconn, cconn = await connect(p, c)
        with cconn.timeout(WAIT_MS):
            pass
        await pconn.disconnect(timeout_ms=WAIT_MS)
        await cconn.disconnected(timeout_ms=WAIT_MS)
        await asyncio.sleep(0.05)   # a late cancellation would land here
        return "not cancelled"
    assert run(main()) == "not cancelled"


def test_other_asyncio_tasks_run_while_aioble_waits(pair):
    p, _ = pair

    async def main():
        ticks = []

        async def ticker():
            while True:
                ticks.append(1)
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        try:
            with pytest.raises(asyncio.TimeoutError):
                await p.advertise(ADV_US, name="busy", timeout_ms=200)
        finally:
            task.cancel()
        return len(ticks) > 1
    assert run(main())


def test_stop_ends_a_waiting_advertise_with_device_disconnected(pair):
    p, _ = pair

    async def main():
        advertising = asyncio.create_task(p.advertise(ADV_US, name="stopped"))
        await p.wait(lambda: p.advertising, WAIT_MS / 1000)
        p.stop()
        with pytest.raises(aioble.DeviceDisconnectedError):
            await advertising
    run(main())
