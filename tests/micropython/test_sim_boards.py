"""bluetooth.BLE end to end on simulated boards (needs build/sim/bb_sim and bumble)."""
import errno
import os
import subprocess
import sys
import time
import uuid as _uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "micropython"

pytest.importorskip("bumble")
if not (os.environ.get("BLEBRIDGE_SIM_FIRMWARE") or (ROOT / "build" / "sim" / "bb_sim").exists()):
    pytest.skip("simulated board firmware not built (make firmware)", allow_module_level=True)

from blebridge.micropython import BLE, FLAG_NOTIFY, FLAG_READ, FLAG_WRITE, UUID  # noqa: E402

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_PERIPHERAL_DISCONNECT = 8
_IRQ_GATTC_READ_RESULT = 15
_IRQ_GATTC_READ_DONE = 16
_IRQ_GATTC_NOTIFY = 18

SVC = UUID("7e1a0003-5c4b-4d55-9a1e-000000000001")
CHR = UUID("7e1a0003-5c4b-4d55-9a1e-000000000002")


@pytest.fixture(scope="module")
def air(tmp_path_factory):
    sock = tmp_path_factory.mktemp("air") / "air.sock"
    old = os.environ.get("BLEBRIDGE_AIR")
    os.environ["BLEBRIDGE_AIR"] = str(sock)
    yield str(sock)
    if old is None:
        os.environ.pop("BLEBRIDGE_AIR", None)
    else:
        os.environ["BLEBRIDGE_AIR"] = old


class Board:
    """One simulated board with a recording IRQ handler."""

    def __init__(self, name):
        self.ble = BLE(port=f"sim:{name}-{_uuid.uuid4().hex[:6]}")
        self.events = []
        self.ble.active(True)
        self.ble.irq(self._irq)

    def _irq(self, event, data):
        self.events.append((event, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)))

    def wait(self, event, timeout=10, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [d for e, d in self.events if e == event]
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.005)
        raise AssertionError(f"no event {event} (x{count}); got {[e for e, _ in self.events]}")

    def close(self):
        self.ble.close()


@pytest.fixture
def boards(air):
    made = []

    def make(name):
        b = Board(name)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def serve(board):
    ((handle,),) = board.ble.gatts_register_services(((SVC, ((CHR, FLAG_READ | FLAG_WRITE | FLAG_NOTIFY),)),))
    board.ble.gatts_write(handle, b"hello")
    board.ble.gap_advertise(20_000, b"\x02\x01\x06")
    return handle


def connect(central, peripheral, n=1):
    central.ble.gap_connect(*peripheral.ble.config("mac"))
    return central.wait(_IRQ_PERIPHERAL_CONNECT, count=n)[0]


def test_radio_off_call_raises_enodev(boards):
    b = boards("off")
    b.ble.active(False)
    with pytest.raises(OSError) as info:
        b.ble.gap_advertise(20_000, b"")
    assert info.value.errno == errno.ENODEV


def test_read_on_unknown_connection_raises_enotconn(boards):
    b = boards("noconn")
    with pytest.raises(OSError) as info:
        b.ble.gattc_read(42, 3)
    assert info.value.errno == errno.ENOTCONN


def test_gatts_write_to_unknown_handle_raises_einval(boards):
    b = boards("nohandle")
    with pytest.raises(OSError) as info:
        b.ble.gatts_write(999, b"x")
    assert info.value.errno == errno.EINVAL


def test_central_reads_and_writes_a_peripheral(boards):
    p, c = boards("p"), boards("c")
    handle = serve(p)
    conn = connect(c, p)
    c.ble.gattc_read(conn, handle)
    assert c.wait(_IRQ_GATTC_READ_RESULT)[2] == b"hello"
    c.ble.gattc_write(conn, handle, b"world", 1)
    assert p.wait(_IRQ_GATTS_WRITE)[1] == handle
    assert p.ble.gatts_read(handle) == b"world"


def test_two_centrals_on_one_peripheral_get_their_own_notifications(boards):
    p, c1, c2 = boards("hub"), boards("c1"), boards("c2")
    handle = serve(p)
    conn1 = connect(c1, p)
    p.wait(_IRQ_CENTRAL_CONNECT)
    p.ble.gap_advertise(20_000, b"\x02\x01\x06")
    conn2 = connect(c2, p)
    p.wait(_IRQ_CENTRAL_CONNECT, count=2)
    peer_conns = [d[0] for e, d in p.events if e == _IRQ_CENTRAL_CONNECT]
    assert len(set(peer_conns)) == 2
    for i, pc in enumerate(peer_conns):
        p.ble.gatts_notify(pc, handle, b"to %d" % i)
    got = {c1.wait(_IRQ_GATTC_NOTIFY)[2], c2.wait(_IRQ_GATTC_NOTIFY)[2]}
    assert got == {b"to 0", b"to 1"}
    assert c1.ble.gap_disconnect(conn1) and c2.ble.gap_disconnect(conn2)
    p.wait(_IRQ_CENTRAL_DISCONNECT, count=2)


def test_peripheral_that_is_also_a_central(boards):
    sensor, relay, phone = boards("sensor"), boards("relay"), boards("phone")
    sensor_handle = serve(sensor)
    relay_handle = serve(relay)            # relay advertises its own service...
    up = connect(relay, sensor)            # ...and is a central of the sensor
    down = connect(phone, relay)
    relay.ble.gattc_read(up, sensor_handle)
    assert relay.wait(_IRQ_GATTC_READ_RESULT)[2] == b"hello"
    relay.ble.gatts_write(relay_handle, b"relayed")
    phone.ble.gattc_read(down, relay_handle)
    assert phone.wait(_IRQ_GATTC_READ_RESULT)[2] == b"relayed"
    assert relay.wait(_IRQ_CENTRAL_CONNECT) and relay.wait(_IRQ_PERIPHERAL_CONNECT)


def test_reconnecting_many_times_does_not_leak_handles(boards):
    p, c = boards("loop-p"), boards("loop-c")
    handle = serve(p)
    rounds = 15
    for i in range(1, rounds + 1):
        conn = connect(c, p, n=i)
        c.ble.gattc_read(conn, handle)
        assert c.wait(_IRQ_GATTC_READ_DONE, count=i)[2] == 0
        assert c.ble.gap_disconnect(conn)
        c.wait(_IRQ_PERIPHERAL_DISCONNECT, count=i)
        p.wait(_IRQ_CENTRAL_DISCONNECT, count=i)
        p.ble.gap_advertise(20_000, b"\x02\x01\x06")
    assert c.ble._channels == {} and c.ble._discoveries == {} and c.ble._mtus == {}
    assert c.ble.gap_disconnect(conn) is False


def _run_pair(server, client, air):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "host"), BLEBRIDGE_AIR=air)
    tag = _uuid.uuid4().hex[:6]
    run = [sys.executable, "-m", "blebridge.runner", "--port"]
    p = subprocess.Popen(run + [f"sim:{server}-{tag}", str(EXAMPLES / f"{server}.py")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.5)
    c = subprocess.run(run + [f"sim:{client}-{tag}", str(EXAMPLES / f"{client}.py")], env=env,
                       capture_output=True, text=True, timeout=60)
    out, _ = p.communicate(timeout=30)
    assert c.returncode == 0, c.stdout + c.stderr
    assert p.returncode == 0, out
    return out, c.stdout


def test_sensor_example_notifies_the_central(air):
    server, client = _run_pair("sensor_peripheral", "sensor_central", air)
    assert client.count("notified temperature") == 5 and "central set the interval to 200 ms" in server


def test_uart_example_echoes_lines(air):
    server, client = _run_pair("uart_peripheral", "uart_central", air)
    assert "echoed: MICROPYTHON OVER BLEBRIDGE" in client and "received: bye" in server


def test_l2cap_example_transfers_all_bytes(air):
    server, client = _run_pair("l2cap_server", "l2cap_client", air)
    assert "received 65536 bytes, 0 wrong" in server


def test_pairing_example_reads_the_secret_after_passkey_pairing(air):
    server, client = _run_pair("pairing_peripheral", "pairing_central", air)
    assert "read before pairing: ATT status 0x0f" in client or "read before pairing: ATT status 0x05" in client
    assert "value b'the cake is a lie'" in client and "passkey shown on the display: 123456" in server
