"""aioble L2CAP channels on two boards."""
import asyncio

import pytest

from blebridge import aioble

from aioble_helpers import WAIT_MS, connect, run

pytestmark = [pytest.mark.hil, pytest.mark.boards(2)]

PSM = 0x81
MTU = 256


async def channels(p, c, psm=PSM, mtu=MTU):
    pconn, cconn = await connect(p, c)
    accepting = asyncio.create_task(pconn.l2cap_accept(psm, mtu, timeout_ms=WAIT_MS))
    cchan = await cconn.l2cap_connect(psm, mtu, timeout_ms=WAIT_MS)
    pchan = await accepting
    return pconn, cconn, pchan, cchan


async def receive(chan, n):
    buf = bytearray(n)
    got = 0
    while got < n:
        got += await chan.recvinto(memoryview(buf)[got:], timeout_ms=WAIT_MS)
    return bytes(buf)


def test_l2cap_transfer_delivers_every_byte_in_order(pair):
    # micropython-lib multitest perf_l2cap, smaller.
    p, c = pair
    payload = bytes(i * 7 & 0xFF for i in range(20 * MTU))

    async def main():
        _, _, pchan, cchan = await channels(p, c)
        sending = asyncio.create_task(cchan.send(payload, timeout_ms=WAIT_MS))
        got = await receive(pchan, len(payload))
        await sending
        await cchan.flush(timeout_ms=WAIT_MS)
        return got, pchan.our_mtu, cchan.peer_mtu
    got, our_mtu, peer_mtu = run(main())
    assert got == payload
    assert our_mtu == peer_mtu == MTU


def test_l2cap_available_says_whether_data_waits(pair):
    p, c = pair

    async def main():
        _, _, pchan, cchan = await channels(p, c)
        before = pchan.available()
        await cchan.send(b"ping")
        await p.wait(pchan.available, WAIT_MS / 1000)
        return before, await receive(pchan, 4), pchan.available()
    assert run(main()) == (False, b"ping", False)


def test_l2cap_disconnect_is_seen_by_the_peer(pair):
    p, c = pair

    async def main():
        _, _, pchan, cchan = await channels(p, c)
        await cchan.disconnect(timeout_ms=WAIT_MS)
        await pchan.disconnected(timeout_ms=WAIT_MS)
        return True
    assert run(main())


def test_l2cap_recvinto_raises_disconnected_after_the_channel_closed(pair):
    p, c = pair

    async def main():
        _, _, pchan, cchan = await channels(p, c)
        await cchan.disconnect(timeout_ms=WAIT_MS)
        await pchan.disconnected(timeout_ms=WAIT_MS)
        with pytest.raises(aioble.L2CAPDisconnectedError):
            await pchan.recvinto(bytearray(8), timeout_ms=WAIT_MS)
    run(main())


def test_l2cap_connect_to_a_psm_nobody_listens_on_raises_connection_error(pair):
    p, c = pair

    async def main():
        _, cconn = await connect(p, c)
        with pytest.raises(aioble.L2CAPConnectionError) as info:
            await cconn.l2cap_connect(0x91, MTU, timeout_ms=WAIT_MS)
        return info.value.args[0]
    assert run(main()) != 0


def test_l2cap_second_channel_on_one_connection_opens_after_the_first_closed(pair):
    # micropython-lib multitest ble_shutdown opens three channels one after the other.
    p, c = pair

    async def main():
        pconn, cconn, pchan, cchan = await channels(p, c)
        await cchan.disconnect(timeout_ms=WAIT_MS)
        await pchan.disconnected(timeout_ms=WAIT_MS)
        accepting = asyncio.create_task(pconn.l2cap_accept(PSM, MTU, timeout_ms=WAIT_MS))
        second = await cconn.l2cap_connect(PSM, MTU, timeout_ms=WAIT_MS)
        accepted = await accepting
        await second.send(b"again")
        return await receive(accepted, 5)
    assert run(main()) == b"again"


def test_l2cap_accept_raises_timeout_error_when_nobody_connects(pair):
    p, c = pair

    async def main():
        pconn, _ = await connect(p, c)
        with pytest.raises(asyncio.TimeoutError):
            await pconn.l2cap_accept(PSM, MTU, timeout_ms=100)
    run(main())
