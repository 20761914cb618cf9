"""aioble's errors: bad arguments (no board needed), and a board lost while a coroutine waits."""
import asyncio
import os
import signal
import threading

import pytest

from blebridge import aioble
from blebridge.errors import BoardLost
from blebridge.micropython import UUID

from aioble_helpers import CHR, SVC, WAIT_MS, client_characteristic, connect, run, service


# -- bad arguments ---------------------------------------------------------------------------------

def test_device_with_an_unknown_address_type_raises_value_error():
    with pytest.raises(ValueError, match="addr_type"):
        aioble.Device(7, b"\x00" * 6)


def test_device_with_a_five_byte_address_raises_value_error():
    with pytest.raises(ValueError, match="6 bytes"):
        aioble.Device(aioble.ADDR_PUBLIC, b"\x00" * 5)


def test_device_from_text_equals_device_from_bytes():
    a = aioble.Device(aioble.ADDR_RANDOM, "c0:ff:ee:00:00:01")
    b = aioble.Device(aioble.ADDR_RANDOM, bytes.fromhex("c0ffee000001"))
    assert a == b and hash(a) == hash(b) and a.addr_hex() == "c0:ff:ee:00:00:01"


def test_devices_of_different_address_types_differ():
    assert aioble.Device(0, "c0:ff:ee:00:00:01") != aioble.Device(1, "c0:ff:ee:00:00:01")


def test_scan_with_a_window_longer_than_its_interval_raises_value_error():
    with pytest.raises(ValueError, match="window_us"):
        aioble.scan(1000, interval_us=10_000, window_us=20_000)


def test_scan_with_a_negative_duration_raises_value_error():
    with pytest.raises(ValueError, match="duration_ms"):
        aioble.scan(-1)


def test_advertise_with_a_zero_interval_raises_value_error():
    async def main():
        await aioble.advertise(0)
    with pytest.raises(ValueError, match="interval_us"):
        run(main())


def test_advertise_with_too_much_for_both_payloads_raises_value_error():
    from blebridge.aioble.peripheral import build_payloads
    with pytest.raises(ValueError, match="too long"):
        build_payloads(name="n" * 29, manufacturer=(0x1234, b"x" * 40))


def test_advertise_payload_overflows_into_the_scan_response():
    from blebridge.aioble.peripheral import build_payloads
    adv, resp = build_payloads(name="sensor", services=[UUID("7e1a0006-5c4b-4d55-9a1e-000000000001")],
                               manufacturer=(0x1234, b"hello"))
    assert adv.startswith(b"\x02\x01\x06") and len(adv) <= 31
    assert resp == b"\x08\xff\x34\x12hello"


def test_characteristic_needs_a_service():
    with pytest.raises(TypeError, match="aioble.Service"):
        aioble.Characteristic(object(), CHR, read=True)


def test_characteristic_with_a_bad_uuid_raises_value_error():
    with pytest.raises(ValueError, match="uuid"):
        aioble.Characteristic(aioble.Service(SVC), "not-a-uuid", read=True)


def test_buffered_characteristic_with_zero_max_len_raises_value_error():
    with pytest.raises(ValueError, match="max_len"):
        aioble.BufferedCharacteristic(aioble.Service(SVC), CHR, write=True, max_len=0)


def test_written_on_a_characteristic_that_is_not_writable_raises_value_error():
    ch = aioble.Characteristic(aioble.Service(SVC), CHR, read=True)
    with pytest.raises(ValueError, match="not writable"):
        run(ch.written())


def test_notify_on_a_characteristic_without_notify_raises_value_error():
    ch = aioble.Characteristic(aioble.Service(SVC), CHR, read=True)
    with pytest.raises(ValueError, match="Not supported"):
        ch.notify(None)


def test_characteristic_read_before_registration_gives_the_initial_value():
    ch = aioble.Characteristic(aioble.Service(SVC), CHR, read=True, initial=b"early")
    assert ch.read() == b"early"


def test_characteristic_write_of_an_int_raises_type_error():
    ch = aioble.Characteristic(aioble.Service(SVC), CHR, read=True)
    with pytest.raises(TypeError, match="bytes-like"):
        ch.write(5)


def test_gatt_error_carries_its_status():
    err = aioble.GattError(0x0A, "read")
    assert err._status == 0x0A and "0x0a" in str(err)


def test_log_level_set_on_the_package_is_used(capsys, monkeypatch):
    monkeypatch.setattr(aioble, "log_level", 3, raising=False)
    aioble.log_info("hello")
    assert "[aioble] I: hello" in capsys.readouterr().out


# -- on boards -------------------------------------------------------------------------------------

@pytest.mark.hil
@pytest.mark.boards(2)
def test_exchange_mtu_on_a_closed_connection_raises_value_error(pair):
    p, c = pair

    async def main():
        pconn, cconn = await connect(p, c)
        await cconn.disconnect(timeout_ms=WAIT_MS)
        with pytest.raises(ValueError, match="Not connected"):
            await cconn.exchange_mtu()
    run(main())


@pytest.mark.hil
@pytest.mark.boards(2)
def test_config_with_an_unknown_name_raises_value_error(pair):
    p, _ = pair
    with pytest.raises(ValueError, match="unknown config param"):
        p.config("colour")


@pytest.mark.hil
@pytest.mark.boards(2)
def test_config_mtu_out_of_range_raises_value_error(pair):
    p, _ = pair
    with pytest.raises(ValueError, match="mtu"):
        p.config(mtu=10)


@pytest.mark.boards(2)
def test_board_lost_while_notified_waits_raises_board_lost(pair, boards):
    if not hasattr(boards[1].transport, "sim_board"):
        pytest.skip("kills a simulated board's process")
    p, c = pair
    svc, _ = service(lambda s: aioble.Characteristic(s, CHR, notify=True))
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        waiting = asyncio.create_task(cc.notified())
        await asyncio.sleep(0.05)
        os.kill(boards[1].transport.sim_board.pid, signal.SIGKILL)
        with pytest.raises(BoardLost):
            await waiting
    run(main(), timeout=30)


@pytest.mark.boards(2)
def test_board_lost_while_read_waits_raises_board_lost(pair, boards):
    if not hasattr(boards[1].transport, "sim_board"):
        pytest.skip("kills a simulated board's process")
    p, c = pair
    release = threading.Event()

    class Slow(aioble.Characteristic):
        def on_read(self, connection):
            release.wait(WAIT_MS / 1000)   # the peer's read waits for this answer
            return 0

    svc = aioble.Service(SVC)
    Slow(svc, CHR, read=True)
    p.register_services(svc)

    async def main():
        _, cconn = await connect(p, c)
        cc = await client_characteristic(cconn)
        reading = asyncio.create_task(cc.read(timeout_ms=WAIT_MS * 3))
        await asyncio.sleep(0.05)
        os.kill(boards[1].transport.sim_board.pid, signal.SIGKILL)
        try:
            with pytest.raises(BoardLost):
                await reading
        finally:
            release.set()
    run(main(), timeout=30)
