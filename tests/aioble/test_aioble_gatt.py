"""aioble GATT server and client on two boards: discovery, read, write, capture, notify,
indicate, buffered characteristics, descriptors."""
import asyncio

import pytest

from blebridge import aioble
from blebridge.micropython import UUID

from aioble_helpers import CHR, CHR2, DSC, SVC, WAIT_MS, client_characteristic, connect, run, service

pytestmark = [pytest.mark.hil, pytest.mark.boards(2)]


def test_discovery_finds_the_service_its_characteristics_and_descriptors(pair):
    p, c = pair
    svc, (ch, _) = service(lambda s: aioble.Characteristic(s, CHR, read=True, notify=True),
                           lambda s: aioble.Characteristic(s, CHR2, write=True))
    aioble.Descriptor(ch, DSC, read=True)
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        services = [s.uuid async for s in cconn.services(timeout_ms=WAIT_MS)]
        s = await cconn.service(SVC, timeout_ms=WAIT_MS)
        chars = [x async for x in s.characteristics(timeout_ms=WAIT_MS)]
        dscs = [d.uuid async for d in chars[0].descriptors(timeout_ms=WAIT_MS)]
        return services, [(x.uuid, x.properties) for x in chars], dscs
    services, chars, dscs = run(main())
    assert SVC in services
    assert chars == [(CHR, 0x12), (CHR2, 0x08)]
    assert dscs == [DSC, UUID(0x2902)]


def test_service_returns_none_for_a_uuid_the_peer_does_not_have(pair):
    p, c = pair
    svc, _ = service(lambda s: aioble.Characteristic(s, CHR, read=True))
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        return await cconn.service(UUID(0x1234), timeout_ms=WAIT_MS)
    assert run(main()) is None


def test_read_returns_the_local_value_the_peripheral_wrote(pair):
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, read=True, initial=b"first"))
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        before = await cc.read(timeout_ms=WAIT_MS)
        ch.write(b"second")
        return before, await cc.read(timeout_ms=WAIT_MS)
    assert run(main()) == (b"first", b"second")


def test_read_refused_by_on_read_raises_gatt_error_with_its_status(pair):
    p, c = pair

    class Guarded(aioble.Characteristic):
        def on_read(self, connection):
            return 0x0E   # ATT "unlikely error"

    svc = aioble.Service(SVC)
    Guarded(svc, CHR, read=True, initial=b"secret")
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        with pytest.raises(aioble.GattError) as info:
            await cc.read(timeout_ms=WAIT_MS)
        return info.value._status
    assert run(main()) == 0x0E


def test_write_with_response_wakes_written_with_the_writer(pair):
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, write=True))
    p.register_services(svc)

    async def main():
        pconn, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        await cc.write(b"hello", response=True, timeout_ms=WAIT_MS)
        writer = await ch.written(timeout_ms=WAIT_MS)
        return writer is pconn, ch.read()
    assert run(main()) == (True, b"hello")


def test_write_without_response_reaches_the_peripheral(pair):
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, write_no_response=True))
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        await cc.write(b"quiet", timeout_ms=WAIT_MS)
        await ch.written(timeout_ms=WAIT_MS)
        return ch.read()
    assert run(main()) == b"quiet"


def test_written_raises_timeout_error_when_nobody_writes(pair):
    p, _ = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, write=True))
    p.register_services(svc)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await ch.written(timeout_ms=100)
    run(main())


def test_capture_delivers_every_write_in_order(pair):
    # micropython-lib multitest ble_write_capture: writes faster than the server takes them.
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, write=True, capture=True))
    p.register_services(svc)

    async def main():
        pconn, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        for i in range(8):
            await cc.write(f"central{i}", response=True, timeout_ms=WAIT_MS)
        got = [await ch.written(timeout_ms=WAIT_MS) for _ in range(8)]
        return [(conn is pconn, data) for conn, data in got]
    assert run(main()) == [(True, f"central{i}".encode()) for i in range(8)]


def test_capture_orders_writes_across_characteristics(pair):
    # micropython-lib multitest ble_write_order: two captured characteristics, written in turn.
    p, c = pair
    svc, (first, second) = service(lambda s: aioble.Characteristic(s, CHR, write=True, capture=True),
                                   lambda s: aioble.Characteristic(s, CHR2, write=True, capture=True))
    p.register_services(svc)

    async def main():
        seen = []

        async def take(ch, label):
            while True:
                await ch.written()
                seen.append(f"{label} {ch.read().decode()}")

        _, cconn = await connect(p, c)
        c1 = await client_characteristic(cconn, CHR)
        c2 = await client_characteristic(cconn, CHR2)
        for i in range(4):
            await c1.write(f"c{i}", response=True, timeout_ms=WAIT_MS)
            await c2.write(f"c{i}", response=True, timeout_ms=WAIT_MS)
        # Every write is queued before anyone takes one: the takers must follow the queue.
        await p.wait(lambda: len(p.capture_queue) == 8, WAIT_MS / 1000)
        tasks = [asyncio.create_task(take(second, "second")), asyncio.create_task(take(first, "first"))]
        await p.wait(lambda: len(seen) == 8, WAIT_MS / 1000)
        for t in tasks:
            t.cancel()
        return seen
    assert run(main()) == [f"{label} c{i}" for i in range(4) for label in ("first", "second")]


def test_notify_reaches_notified(pair):
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, notify=True))
    p.register_services(svc)

    async def main():
        pconn, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        await cc.subscribe(notify=True)
        ch.notify(pconn, b"tick")
        return await cc.notified(timeout_ms=WAIT_MS)
    assert run(main()) == b"tick"


def test_notify_without_data_sends_the_local_value(pair):
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, read=True, notify=True))
    p.register_services(svc)

    async def main():
        pconn, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        await cc.subscribe(notify=True)
        ch.write(b"local")
        ch.notify(pconn)
        return await cc.notified(timeout_ms=WAIT_MS)
    assert run(main()) == b"local"


def test_write_with_send_update_notifies_subscribers(pair):
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, read=True, notify=True))
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        await cc.subscribe(notify=True)
        ch.write(b"update", send_update=True)
        return await cc.notified(timeout_ms=WAIT_MS)
    assert run(main()) == b"update"


def test_notified_raises_timeout_error_when_nothing_comes(pair):
    p, c = pair
    svc, _ = service(lambda s: aioble.Characteristic(s, CHR, notify=True))
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        with pytest.raises(asyncio.TimeoutError):
            await cc.notified(timeout_ms=100)
    run(main())


def test_notified_raises_device_disconnected_when_the_peer_leaves(pair):
    p, c = pair
    svc, _ = service(lambda s: aioble.Characteristic(s, CHR, notify=True))
    p.register_services(svc)

    async def main():
        pconn, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        waiting = asyncio.create_task(cc.notified())
        await asyncio.sleep(0.05)
        await pconn.disconnect(timeout_ms=WAIT_MS)
        with pytest.raises(aioble.DeviceDisconnectedError):
            await waiting
    run(main())


def test_indicate_returns_once_the_client_confirmed(pair):
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, indicate=True))
    p.register_services(svc)

    async def main():
        pconn, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        await cc.subscribe(notify=False, indicate=True)
        await ch.indicate(pconn, b"important", timeout_ms=WAIT_MS)
        return await cc.indicated(timeout_ms=WAIT_MS)
    assert run(main()) == b"important"


def test_buffered_characteristic_keeps_a_write_longer_than_the_default(pair):
    # micropython-lib multitest ble_buffered_characteristic.
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.BufferedCharacteristic(s, CHR, write=True, max_len=40))
    p.register_services(svc)
    long = bytes(range(40))

    async def main():
        p.config(mtu=64)
        _, cconn = await connect(p, c)
        await cconn.exchange_mtu(64, timeout_ms=WAIT_MS)
        cc = await client_characteristic(cconn)
        await cc.write(long, response=True, timeout_ms=WAIT_MS)
        await ch.written(timeout_ms=WAIT_MS)
        return ch.read()
    assert run(main()) == long


def test_buffered_characteristic_with_append_accumulates_writes(pair):
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.BufferedCharacteristic(s, CHR, write=True, max_len=30, append=True))
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        for part in (b"ab", b"cd", b"ef"):
            await cc.write(part, response=True, timeout_ms=WAIT_MS)
            # The peer's answer can come before the board has the value: its write event is later.
            await ch.written(timeout_ms=WAIT_MS)
        return ch.read()
    assert run(main()) == b"abcdef"


def test_descriptor_is_read_and_written_by_the_client(pair):
    # micropython-lib multitest ble_descriptor.
    p, c = pair
    svc, (ch,) = service(lambda s: aioble.Characteristic(s, CHR, read=True))
    dsc = aioble.Descriptor(ch, DSC, read=True, write=True, initial=b"label")
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        cd = await cc.descriptor(DSC, timeout_ms=WAIT_MS)
        first = await cd.read(timeout_ms=WAIT_MS)
        await cd.write(b"renamed", timeout_ms=WAIT_MS)
        await dsc.written(timeout_ms=WAIT_MS)
        return first, dsc.read()
    assert run(main()) == (b"label", b"renamed")


def test_notified_returns_the_latest_of_notifications_nobody_waited_for(pair):
    # micropython-lib multitest ble_notify: three quick notifications, the client sees the last.
    p, c = pair
    svc, (ch, marker) = service(lambda s: aioble.Characteristic(s, CHR, notify=True),
                                lambda s: aioble.Characteristic(s, CHR2, indicate=True))
    p.register_services(svc)

    async def main():
        pconn, cconn = await connect(p, c)
        cc = await client_characteristic(cconn, CHR)
        cm = await client_characteristic(cconn, CHR2)
        await cc.subscribe(notify=True)
        await cm.subscribe(notify=False, indicate=True)
        for j in range(3):
            ch.notify(pconn, f"direct-{j}")
        # The indication comes after the notifications on the same link: once it is in, so are they.
        await marker.indicate(pconn, b"sent", timeout_ms=WAIT_MS)
        await cm.indicated(timeout_ms=WAIT_MS)
        return await cc.notified(timeout_ms=WAIT_MS)
    assert run(main()) == b"direct-2"


def test_send_update_reaches_only_a_subscribed_client(pair):
    # micropython-lib multitest ble_notify: before subscribing and after unsubscribing, nothing.
    p, c = pair
    svc, (ch, marker) = service(lambda s: aioble.Characteristic(s, CHR, read=True, notify=True),
                                lambda s: aioble.Characteristic(s, CHR2, indicate=True))
    p.register_services(svc)

    async def main():
        pconn, cconn = await connect(p, c)
        cc = await client_characteristic(cconn, CHR)
        cm = await client_characteristic(cconn, CHR2)
        await cm.subscribe(notify=False, indicate=True)

        async def settle():
            await marker.indicate(pconn, b"x", timeout_ms=WAIT_MS)
            await cm.indicated(timeout_ms=WAIT_MS)

        ch.write(b"before-subscribe", send_update=True)
        await settle()
        await cc.subscribe(notify=True)
        ch.write(b"after-subscribe", send_update=True)
        got = await cc.notified(timeout_ms=WAIT_MS)
        await cc.subscribe(notify=False)
        ch.write(b"after-unsubscribe", send_update=True)
        await settle()
        return got, list(cc._notify_queue)
    assert run(main()) == (b"after-subscribe", [])


def test_peripheral_and_central_notify_each_other_in_turn(pair):
    # micropython-lib multitest perf_gatt_notify: both serve, each is the other's client.
    p, c = pair
    count = 20

    def register(radio):
        svc = aioble.Service(SVC)
        ch = aioble.Characteristic(svc, CHR, read=True, write=True, notify=True, indicate=True)
        radio.register_services(svc)
        return ch

    async def main():
        p_server, c_server = register(p), register(c)
        pconn, cconn = await connect(p, c)
        p_client = await client_characteristic(pconn)
        c_client = await client_characteristic(cconn)
        got = []

        async def central_side():
            for i in range(count):
                got.append(await c_client.notified(timeout_ms=WAIT_MS))
                c_server.notify(cconn, b"central" + str(i).encode())

        echo = asyncio.create_task(central_side())
        for i in range(count):
            p_server.notify(pconn, b"peripheral" + str(i).encode())
            assert await p_client.notified(timeout_ms=WAIT_MS) == b"central" + str(i).encode()
        await echo
        return got
    assert run(main()) == [b"peripheral" + str(i).encode() for i in range(count)]
