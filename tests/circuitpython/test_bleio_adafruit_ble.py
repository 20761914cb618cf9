"""Adafruit's adafruit_ble (from PyPI, unmodified) over blebridge's _bleio on two simulated
boards: a quick check that the objects have the shapes it expects."""
import sys
import types

import pytest

from blebridge.circuitpython import _bleio, using
from bleio_helpers import FAST, TIMEOUT

pytestmark = pytest.mark.boards(2)


@pytest.fixture
def adafruit_ble(monkeypatch):
    """adafruit_ble importing our _bleio (what `blebridge run` arranges for scripts)."""
    monkeypatch.setitem(sys.modules, "_bleio", _bleio)
    if "micropython" not in sys.modules:
        shim = types.ModuleType("micropython")
        shim.const = lambda x: x
        monkeypatch.setitem(sys.modules, "micropython", shim)
    return pytest.importorskip("adafruit_ble")


@pytest.fixture
def uart_link(adafruit_ble, pair):
    """(peripheral UARTService, central's connection) through adafruit_ble's BLERadio."""
    from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
    from adafruit_ble.services.nordic import UARTService
    p, c = pair
    with using(p):
        uart = UARTService()
    adafruit_ble.BLERadio(p).start_advertising(ProvideServicesAdvertisement(uart), interval=FAST)
    central = adafruit_ble.BLERadio(c)
    found = None
    for adv in central.start_scan(ProvideServicesAdvertisement, timeout=TIMEOUT, interval=FAST, window=FAST):
        if UARTService in adv.services:
            found = adv
            break
    central.stop_scan()
    assert found is not None, "the UART service was not advertised"
    return uart, central.connect(found, timeout=TIMEOUT)


def test_uart_central_to_peripheral(uart_link):
    from adafruit_ble.services.nordic import UARTService
    uart, conn = uart_link
    conn[UARTService].write(b"ping\n")
    uart.timeout = TIMEOUT
    assert uart.readline() == b"ping\n"


def test_uart_peripheral_to_central(uart_link):
    from adafruit_ble.services.nordic import UARTService
    uart, conn = uart_link
    remote = conn[UARTService]
    remote.timeout = TIMEOUT
    uart.write(b"pong\n")
    assert remote.readline() == b"pong\n"


def test_ble_connection_pairs(uart_link):
    _, conn = uart_link
    conn.pair()
    assert conn.paired


def test_radio_connections_wrap_ours(adafruit_ble, uart_link):
    _, conn = uart_link
    assert conn.connected and conn._bleio_connection in conn._bleio_connection._adapter.connections


def test_hid_and_device_info_services_are_discovered(adafruit_ble, pair):
    from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
    from adafruit_ble.services.standard.device_info import DeviceInfoService
    from adafruit_ble.services.standard.hid import HIDService
    p, c = pair
    with using(p):
        hid = HIDService()
        DeviceInfoService(software_revision="1.0", manufacturer="blebridge")
    adafruit_ble.BLERadio(p).start_advertising(ProvideServicesAdvertisement(hid), interval=FAST)
    conn = adafruit_ble.BLERadio(c).connect(p.address, timeout=TIMEOUT)
    conn.pair()
    assert len(conn[HIDService].devices) == len(hid.devices) and conn[DeviceInfoService].manufacturer == "blebridge"
