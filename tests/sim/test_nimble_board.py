"""The NimBLE board (firmware/ports/nimble on the real NimBLE host, `sim:NAME?stack=nimble`) on
the simulated air, next to the simulator's own Bumble-hosted boards.

Needs build/nimble-sim/bb_nimble_sim (`make nimble-sim NIMBLE=<mynewt-nimble checkout>`) or
BLEBRIDGE_NIMBLE_SIM: skipped otherwise (`make test` and CI have no NimBLE tree). The whole
MicroPython suite on these boards: `make conformance MICROPYTHON=... NIMBLE=...`."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest

from blebridge import protocol as P
from blebridge.micropython import BLE, FLAG_READ, FLAG_WRITE, UUID
from blebridge.sim import launcher
from blebridge.sim.board import address_for_name

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_PERIPHERAL_DISCONNECT = 8
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GATTC_SERVICE_RESULT = 9
_IRQ_GATTC_SERVICE_DONE = 10
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


def wait(ble: Any, event: int, count: int = 1) -> tuple:
    """The data of the count'th IRQ ``event`` of ``ble``."""
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while time.monotonic() < deadline:
        found = [data for e, data in list(ble.events) if e == event]
        if len(found) >= count:
            return found[count - 1]
        time.sleep(0.005)
    raise AssertionError(f"no event {event} (#{count}); got {[e for e, _ in ble.events]}")


def wait_until(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"not within {EVENT_TIMEOUT_S} s: {what}")


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


def test_service_discovered_by_uuid_on_a_nimble_peripheral_ends_at_its_last_handle(open_ble):
    # NimBLE's server ends the last service at 0xFFFF in Read By Group Type (allowed); a
    # discovery by UUID is Find By Type Value on MicroPython's stacks, which gives the real end
    # (multi_bluetooth ble_irq_calls prints the range).
    peripheral = open_ble("svc-end", "nimble")
    central = open_ble("svc-finder", "bumble")
    serve(peripheral, b"x")
    central.gap_connect(*peripheral.config("mac"))
    conn = wait(central, _IRQ_PERIPHERAL_CONNECT)[0]
    central.gattc_discover_services(conn, SVC)
    wait(central, _IRQ_GATTC_SERVICE_DONE)
    (start, end, uuid), = [d[1:] for e, d in central.events if e == _IRQ_GATTC_SERVICE_RESULT]
    assert (end - start, uuid) == (2, SVC)  # declaration, characteristic, value


def test_nimble_central_finds_every_characteristic_up_to_the_end_of_the_range(open_ble):
    # NimBLE's characteristic discovery stops with two handles left after a value handle
    # (mynewt-nimble 1d866e41a): the last characteristic, declaration and value only, was lost.
    peripheral = open_ble("chr-p", "bumble")
    central = open_ble("chr-c", "nimble")
    second = UUID("7e1a0012-5c4b-4d55-9a1e-000000000003")
    peripheral.gatts_register_services(((SVC, ((CHR, FLAG_READ), (second, FLAG_READ))),))
    peripheral.gap_advertise(20_000, b"\x02\x01\x06")
    central.gap_connect(*peripheral.config("mac"))
    conn = wait(central, _IRQ_PERIPHERAL_CONNECT)[0]
    central.gattc_discover_services(conn, SVC)
    wait(central, _IRQ_GATTC_SERVICE_DONE)
    (start, end, _uuid), = [d[1:] for e, d in central.events if e == _IRQ_GATTC_SERVICE_RESULT]
    central.gattc_discover_characteristics(conn, start, end)
    wait(central, _IRQ_GATTC_CHARACTERISTIC_DONE)
    found = [d[4] for e, d in central.events if e == _IRQ_GATTC_CHARACTERISTIC_RESULT]
    assert found == [CHR, second]


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


def test_nimble_board_listens_again_on_its_psm_after_radio_off_and_on(open_ble):
    # Upstream NimBLE keeps its L2CAP servers across ble_hs_stop and refuses a second one on a
    # PSM (EALREADY); MicroPython's binding listens again after active(False)/(True) (aioble
    # multitest ble_shutdown).
    ble = open_ble("relisten", "nimble")
    ble.l2cap_listen(0x80, 512)
    ble.active(False)
    ble.active(True)
    ble.l2cap_listen(0x80, 512)


# -- bonds (issue 12 part 3, findings 3 and 6) -------------------------------------------------

def bond(central: Any, peripheral: Any) -> None:
    """Connect central to peripheral (advertising), pair Just Works with bonding, disconnect."""
    for ble in (central, peripheral):
        ble.config(bond=True, mitm=False, io=3)  # io 3: no input, no output
    serve(peripheral, b"bonded")
    central.gap_connect(*peripheral.config("mac"))
    conn = wait(central, _IRQ_PERIPHERAL_CONNECT)[0]
    wait(peripheral, _IRQ_CENTRAL_CONNECT)
    central.gap_pair(conn)
    assert wait(central, _IRQ_ENCRYPTION_UPDATE)[3] == 1  # bonded
    assert wait(peripheral, _IRQ_ENCRYPTION_UPDATE)[3] == 1
    central.gap_disconnect(conn)
    wait(central, _IRQ_PERIPHERAL_DISCONNECT)
    wait(peripheral, _IRQ_CENTRAL_DISCONNECT)


def resolving_list(air: Any, name: str) -> dict[bytes, bytes]:
    """The resolving list NimBLE gave board NAME's controller: peer identity address (MSB
    first, as config("mac")) -> peer IRK."""
    def read() -> dict[bytes, bytes]:
        served = air.air.controllers.get(name)
        if served is None:
            return {}
        return {bytes(addr)[::-1]: irk for addr, irk in served.controller.resolving_list.items()}
    return air.call(read)


def test_bonded_peers_irk_reaches_the_controller_after_the_radio_comes_back_on(air, open_ble):
    # Finding 3: NimBLE restores peer IRKs from the store in ble_hs_sync, before the port can
    # ask the host; the port restores them once the radio is on, or a bonded phone using
    # resolvable private addresses is not recognised after a reboot. The controller forgets
    # its resolving list at the HCI Reset of every start.
    peripheral = open_ble("irk-p", "nimble")
    central = open_ble("irk-c", "nimble")
    bond(central, peripheral)
    peripheral.gap_advertise(None)
    peripheral.active(False)
    peripheral.active(True)
    central_addr = central.config("mac")[1]
    # NimBLE's own entry (all-zero peer) is there from the start; the central's follows.
    irk = wait_until("the central's IRK in the peripheral's resolving list",
                     lambda: resolving_list(air, "irk-p").get(central_addr))
    assert len(irk) == 16 and any(irk)


def test_bonded_peers_reconnection_asks_the_host_for_no_security_record(air, open_ble):
    # Finding 6: a bond lookup that asks the host holds ble_hs_lock until the answer, and one
    # made while the core task is inside NimBLE could not ask and found no bond. The port reads
    # the host's records when the radio comes on; lookups are answered on the board.
    peripheral = open_ble("look-p", "nimble")
    central = open_ble("look-c", "nimble")
    bond(central, peripheral)
    peripheral.gap_advertise(None)
    peripheral.active(False)
    peripheral.active(True)
    central_addr = central.config("mac")[1]
    wait_until("the records read again (the central's IRK restored)",
               lambda: central_addr in resolving_list(air, "look-p"))
    asked: list[int] = []
    security = {P.CONSTANTS["secret_type"]["PEER_SEC"], P.CONSTANTS["secret_type"]["OUR_SEC"]}
    peripheral.board.add_event_listener(
        lambda ev: asked.append(ev.fields[1]) if ev.name == "GET_SECRET" else None)
    peripheral.gap_advertise(20_000, b"\x02\x01\x06")
    central.gap_connect(*peripheral.config("mac"))
    conn = wait(central, _IRQ_PERIPHERAL_CONNECT, count=2)[0]
    central.gap_pair(conn)  # bonded: re-encrypts with the stored keys
    assert wait(peripheral, _IRQ_ENCRYPTION_UPDATE, count=2)[1:4] == (1, 0, 1)
    assert not security & set(asked)


def test_radio_calls_are_taken_while_nobody_answers_the_boards_bond_questions(air, nimble_firmware):
    # A bare board: no API layer answers GET_SECRET (the core gives the default after
    # QUESTION_TIMEOUT_MS). The bond records the port reads at radio start must not hold the
    # radio calls that follow (they were refused with EAGAIN until the questions timed out).
    from blebridge import open_board

    board = open_board(f"sim:bare?stack=nimble&air={air.socket_path}")
    try:
        asked = threading.Event()
        board.add_event_listener(lambda ev: asked.set() if ev.name == "GET_SECRET" else None)
        assert board.call("ble_active", True) is True
        assert asked.wait(EVENT_TIMEOUT_S)
        board.call("gatts_register_services", [
            [(0x180D).to_bytes(2, "little"), [[(0x2A37).to_bytes(2, "little"), 0x02, 20, b"", []]]],
        ])
        board.call("gap_advertise_start", 20_000, b"\x02\x01\x06", b"", True, True, False, 0)
    finally:
        board.close()


_IRQ_SCAN_DONE = 6
_IRQ_GET_SECRET = 29


@pytest.fixture
def nimble_ble(air, nimble_firmware, tmp_path, monkeypatch) -> Iterator[Any]:
    """A MicroPython BLE object on a new NimBLE board, radio off, no handler."""
    from blebridge import open_board

    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))
    board = open_board(f"sim:irqcalls?stack=nimble&air={air.socket_path}")
    ble = BLE(board)
    yield ble
    ble.close()
    board.close()


def test_bond_questions_of_active_reach_the_handler_set_before_active_returns(nimble_ble):
    # MicroPython's NimBLE binding reads the bond store inside active(True) (ble_hs_sync), with
    # the handler set then; the board's bond prefetch asks the same inside ble_active(True).
    seen: list[int] = []
    nimble_ble.irq(lambda event, data: seen.append(event))
    nimble_ble.active(True)
    assert _IRQ_GET_SECRET in seen


def test_handler_set_after_active_gets_no_bond_question_of_active(nimble_ble):
    # multi_bluetooth ble_irq_calls: active(1), then a handler that knows no _IRQ_GET_SECRET.
    nimble_ble.active(True)
    seen: list[int] = []
    nimble_ble.irq(lambda event, data: seen.append(event))
    nimble_ble.gap_scan(50, 30_000, 30_000)   # its SCAN_DONE comes after anything queued before
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while _IRQ_SCAN_DONE not in seen and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _IRQ_SCAN_DONE in seen
    assert _IRQ_GET_SECRET not in seen
