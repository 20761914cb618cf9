"""wireless.ble on simulated boards, as a library: several boards in one process, argument
checks that need a board, callbacks that raise."""
import os
import threading

import pytest

from blebridge.ble import advertising as ad
from blebridge.zerynth import ble, open_ble

#: Seconds to wait for radio events (generous: the machine may be loaded).
EVENT_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def boards():
    pid = os.getpid()
    a, b = open_ble(f"sim:zt-{pid}-a", "nrf52"), open_ble(f"sim:zt-{pid}-b", "esp32")
    yield a, b
    a.close()
    b.close()


def _reports(scanner, name):
    """Start scanning on ``scanner``; returns an event set at the first report naming ``name``."""
    seen = threading.Event()

    def report(data):
        if ad.name(data[3]) == name:
            seen.set()

    scanner.add_callback(ble.EVT_SCAN_REPORT, report)
    scanner.scanning(20, 20, duplicates=1)
    scanner.start_scanning(int(EVENT_TIMEOUT_S * 1000))
    return seen


def test_one_board_sees_the_other_advertise(boards):
    a, b = boards
    a.gap("zt-alice")
    a.advertising(20)
    a.start()
    a.start_advertising()
    try:
        seen = _reports(b, "zt-alice")
        assert seen.wait(EVENT_TIMEOUT_S)
    finally:
        b.stop_scanning()
        a.stop_advertising()


def test_open_ble_gives_one_object_per_board(boards):
    a, _ = boards
    assert open_ble(a.board.spec) is a


def test_a_raising_callback_is_printed_and_events_go_on(boards, capfd):
    a, b = boards
    a.gap("zt-raise")
    a.advertising(20)
    a.start_advertising()
    calls = []
    later = threading.Event()

    def report(data):
        calls.append(data)
        if len(calls) == 1:
            raise ZeroDivisionError("on purpose")
        if ad.name(data[3]) == "zt-raise":
            later.set()

    b.add_callback(ble.EVT_SCAN_REPORT, report)
    b.scanning(20, 20, duplicates=1)
    b.start_scanning(int(EVENT_TIMEOUT_S * 1000))
    try:
        assert later.wait(EVENT_TIMEOUT_S)
    finally:
        b.stop_scanning()
        a.stop_advertising()
    err = capfd.readouterr().err
    assert "the callback of EVT_SCAN_REPORT raised" in err
    assert "Traceback" in err and "ZeroDivisionError: on purpose" in err


def test_scan_stopped_follows_stop_scanning(boards):
    _, b = boards
    stopped = threading.Event()
    b.add_callback(ble.EVT_SCAN_STOPPED, lambda data: stopped.set())
    b.start_scanning(0)
    b.stop_scanning()
    assert stopped.wait(EVENT_TIMEOUT_S)


def test_advertising_timeout_ends_with_adv_stopped(boards):
    a, _ = boards
    stopped = threading.Event()
    a.add_callback(ble.EVT_ADV_STOPPED, lambda data: stopped.set())
    a.advertising(20, timeout=200)
    a.start_advertising()
    assert stopped.wait(EVENT_TIMEOUT_S)


def test_value_set_before_start_is_the_initial_value(boards):
    a, _ = boards
    s = ble.Service(0x181A)
    c = ble.Characteristic(0x2A6E, ble.READ, 2, "Temperature", ble.NUMBER)
    s.add_characteristic(c)
    c.set_value(2150)
    a.add_service(s)
    a.start()
    assert c.get_value() == 2150


def test_value_set_after_start_is_read_back(boards):
    a, _ = boards
    s = ble.Service(0x180F)
    c = ble.Characteristic(0x2A19, ble.READ | ble.NOTIFY, 1, "Battery Level")
    s.add_characteristic(c)
    a.add_service(s)
    a.start()
    c.set_value(42)
    assert c.get_value() == 42


def test_bonded_is_empty_on_a_fresh_store(boards, tmp_path):
    a, _ = boards
    from blebridge.ble.bonds import SecretStore
    a.session.use_secret_store(SecretStore(tmp_path / "bonds.json"))
    try:
        assert a.bonded() == []
    finally:
        a.session.use_secret_store(None)


@pytest.mark.parametrize("call, exc", [
    (lambda z: z.gap(7), TypeError),
    (lambda z: z.gap("x" * 65), ValueError),
    (lambda z: z.gap("x", security=(1, 5)), ValueError),
    (lambda z: z.gap("x", security=(2, 3)), ValueError),
    (lambda z: z.gap("x", connection=(400, 300, 0, 4000)), ValueError),
    (lambda z: z.gap("x", appearance=0x10000), ValueError),
    (lambda z: z.security(capabilities=9), ValueError),
    (lambda z: z.security(key_size=6), ValueError),
    (lambda z: z.security(passkey=1000000), ValueError),
    (lambda z: z.security(oob=1), ValueError),
    (lambda z: z.advertising(10), ValueError),
    (lambda z: z.advertising(100, payload=bytes(32)), ValueError),
    (lambda z: z.advertising(100, payload=3), TypeError),
    (lambda z: z.advertising(100, mode=ble.ADV_CONN_DIR), ValueError),
    (lambda z: z.scanning(10, 20), ValueError),
    (lambda z: z.scanning("10"), TypeError),
    (lambda z: z.start_scanning(-1), ValueError),
    (lambda z: z.add_callback(10, print), ValueError),
    (lambda z: z.add_callback(ble.EVT_CONNECTED, 3), TypeError),
    (lambda z: z.add_service(ble.Characteristic(1, ble.READ, 1, "x")), TypeError),
    (lambda z: z.remove_bonded(b"\x01\x02"), TypeError),
    (lambda z: z.remove_bonded("C0:FF:EE:00:00:01"), TypeError),
    (lambda z: z.confirm_passkey("yes"), TypeError),
])
def test_bad_argument_raises_zerynth_error_type(boards, call, exc):
    with pytest.raises(exc):
        call(boards[0])


def test_confirm_passkey_without_a_pairing_does_nothing(boards):
    boards[0].confirm_passkey(1)


def test_instance_reads_the_module_constants(boards):
    assert (boards[0].EVT_SCAN_REPORT, boards[0].ADV_UNCN_UND) == (ble.EVT_SCAN_REPORT, ble.ADV_UNCN_UND)


def test_adding_a_service_after_start_keeps_the_values_set_before(boards):
    a, _ = boards
    first = ble.Service(0x1809)
    c = ble.Characteristic(0x2A1C, ble.READ, 4, "Temperature", ble.NUMBER)
    first.add_characteristic(c)
    a.add_service(first)
    a.start()
    c.set_value(123456)
    later = ble.Service(0x180A)
    later.add_characteristic(ble.Characteristic(0x2A29, ble.READ, 8, "Maker", ble.STRING))
    a.add_service(later)
    assert c.get_value() == 123456
