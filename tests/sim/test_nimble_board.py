"""The NimBLE board (firmware/ports/nimble on the real NimBLE host, `sim:NAME?stack=nimble`) on
the simulated air, next to the simulator's own Bumble-hosted boards.

Needs build/nimble-sim/bb_nimble_sim (`make nimble-sim NIMBLE=<mynewt-nimble checkout>`) or
BLEBRIDGE_NIMBLE_SIM: skipped otherwise (`make test` and CI have no NimBLE tree). The whole
MicroPython suite on these boards: `make conformance MICROPYTHON=... NIMBLE=...`."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import pytest

from blebridge.micropython import BLE, FLAG_READ, FLAG_WRITE, UUID
from blebridge.sim import launcher
from blebridge.sim.board import address_for_name

_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_GATTC_CHARACTERISTIC_RESULT = 11
_IRQ_GATTC_CHARACTERISTIC_DONE = 12
_IRQ_GATTC_READ_RESULT = 15

SVC = UUID("7e1a0012-5c4b-4d55-9a1e-000000000001")
CHR = UUID("7e1a0012-5c4b-4d55-9a1e-000000000002")
#: Seconds any one event may take (the machine may be loaded).
EVENT_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def nimble_firmware() -> str:
    try:
        return launcher.nimble_firmware_path()
    except FileNotFoundError as exc:
        pytest.skip(f"NimBLE board not built: {exc}")


@pytest.fixture
def open_ble(air, nimble_firmware, tmp_path, monkeypatch) -> Iterator[Callable[[str, str], Any]]:
    """open_ble(NAME, STACK) -> a MicroPython BLE object on a new board of that stack, radio on,
    recording its IRQs in .events."""
    from blebridge import open_board

    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    made: list[tuple[Any, Any]] = []

    def open_(name: str, stack: str) -> Any:
        board = open_board(f"sim:{name}?stack={stack}&air={air.socket_path}")
        ble = BLE(board)
        made.append((ble, board))
        ble.events = []
        ble.irq(lambda event, data: ble.events.append(
            (event, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data))))
        ble.active(True)
        return ble

    yield open_
    for ble, board in made:
        ble.close()
        board.close()


def wait(ble: Any, event: int) -> tuple:
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while time.monotonic() < deadline:
        for e, data in ble.events:
            if e == event:
                return data
        time.sleep(0.005)
    raise AssertionError(f"no event {event}; got {[e for e, _ in ble.events]}")


def serve(ble: Any, value: bytes) -> int:
    ((handle,),) = ble.gatts_register_services(((SVC, ((CHR, FLAG_READ | FLAG_WRITE),)),))
    ble.gatts_write(handle, value)
    ble.gap_advertise(20_000, b"\x02\x01\x06")
    return handle


def read_from(central: Any, peripheral: Any, handle: int) -> bytes:
    central.gap_connect(*peripheral.config("mac"))
    conn = wait(central, _IRQ_PERIPHERAL_CONNECT)[0]
    central.gattc_read(conn, handle)
    return wait(central, _IRQ_GATTC_READ_RESULT)[2]


def test_nimble_board_says_port_nimble_in_its_handshake(open_ble):
    ble = open_ble("nim-hs", "nimble")
    assert ble.board.info.port == "nimble"


def test_nimble_board_address_is_its_controllers_public_address(open_ble):
    ble = open_ble("nim-mac", "nimble")
    # config("mac") gives the address most significant byte first; Bumble keeps it LSB first.
    assert ble.config("mac") == (0, bytes(address_for_name("nim-mac"))[::-1])


@pytest.mark.parametrize("central_stack,peripheral_stack",
                         [("nimble", "bumble"), ("bumble", "nimble"), ("nimble", "nimble")])
def test_central_reads_a_characteristic_of_a_peripheral(open_ble, central_stack, peripheral_stack):
    peripheral = open_ble("per", peripheral_stack)
    central = open_ble("cen", central_stack)
    handle = serve(peripheral, b"hello")
    assert read_from(central, peripheral, handle) == b"hello"


def test_nimble_peripheral_serves_services_registered_after_radio_off_and_on(open_ble):
    peripheral = open_ble("again", "nimble")
    central = open_ble("reader", "bumble")
    serve(peripheral, b"old")
    peripheral.gap_advertise(None)
    peripheral.active(False)
    peripheral.active(True)
    handle = serve(peripheral, b"new")  # services go with the radio, as in MicroPython
    assert read_from(central, peripheral, handle) == b"new"


def test_nimble_peripheral_serves_no_old_services_after_radio_off_and_on(open_ble):
    peripheral = open_ble("stale", "nimble")
    central = open_ble("finder", "bumble")
    serve(peripheral, b"old")
    peripheral.gap_advertise(None)
    peripheral.active(False)
    peripheral.active(True)
    peripheral.gap_advertise(20_000, b"\x02\x01\x06")
    central.gap_connect(*peripheral.config("mac"))
    conn = wait(central, _IRQ_PERIPHERAL_CONNECT)[0]
    central.gattc_discover_characteristics(conn, 1, 0xFFFF)
    wait(central, _IRQ_GATTC_CHARACTERISTIC_DONE)
    found = [data[4] for event, data in central.events if event == _IRQ_GATTC_CHARACTERISTIC_RESULT]
    assert CHR not in found
