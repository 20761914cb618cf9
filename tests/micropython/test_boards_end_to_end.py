"""bluetooth.BLE end to end on the boards hil.plugin gives: simulated in `make test`, a rig's in `make hil`.

Every test here is marked hil and uses only the BLE API and `blebridge run`, so one test serves sim,
nrf_sd and nimble boards. A test takes opened boards from the `boards` fixture (how many:
`@pytest.mark.boards(n)`, default 1; each reset as after boot) or ports for scripts from
`board_urls(n)`; on a rig with fewer boards it is skipped (hil/README.md).
"""
import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from blebridge.micropython import BLE, FLAG_NOTIFY, FLAG_READ, FLAG_WRITE, UUID

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "micropython"

pytestmark = pytest.mark.hil

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_PERIPHERAL_DISCONNECT = 8
_IRQ_GATTC_READ_RESULT = 15
_IRQ_GATTC_READ_DONE = 16
_IRQ_GATTC_WRITE_DONE = 17
_IRQ_GATTC_NOTIFY = 18
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_PASSKEY_ACTION = 31

SVC = UUID("7e1a0003-5c4b-4d55-9a1e-000000000001")
CHR = UUID("7e1a0003-5c4b-4d55-9a1e-000000000002")

# Seconds a peripheral script may take to open its board and start advertising: a board that
# resets when its port opens (ESP32 DevKits via DTR/RTS) boots and handshakes again first.
SCRIPT_READY_TIMEOUT_S = 30.0
# Seconds for a whole example pair, the central's script once it is started.
SCRIPT_RUN_TIMEOUT_S = 60.0


@pytest.fixture(scope="module", autouse=True)
def simulator(hil_rig):
    """Without a rig the boards are simulated (on hil.plugin's private air): the simulator must be
    there."""
    if not hil_rig.configured:
        pytest.importorskip("bumble")
        if not (os.environ.get("BLEBRIDGE_SIM_FIRMWARE") or (ROOT / "build" / "sim" / "bb_sim").exists()):
            pytest.skip("simulated board firmware not built (make firmware)")


class Node:
    """One board's BLE object, radio on, with an IRQ handler recording every event."""

    def __init__(self, board):
        self.ble = BLE(board)
        self.events = []
        #: event -> function(data) whose result the IRQ handler returns (the board's questions).
        self.answers = {}
        self.ble.active(True)
        self.ble.irq(self._irq)

    def _irq(self, event, data):
        self.events.append((event, tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)))
        answer = self.answers.get(event)
        return answer(data) if answer is not None else None

    def wait(self, event, timeout=10, count=1):
        """The data of the count'th event of this kind, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [d for e, d in self.events if e == event]
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.005)
        raise AssertionError(f"no event {event} (x{count}); got {[e for e, _ in self.events]}")

    def close(self):
        self.ble.close()   # the board itself is closed by the boards fixture


@pytest.fixture(autouse=True)
def private_bonds(tmp_path, monkeypatch):
    """Bonds go to this test's own store: board addresses are the same in every test and run."""
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path / "secrets"))


@pytest.fixture
def nodes(boards):
    made = []
    try:
        for b in boards:
            made.append(Node(b))
        yield made
    finally:
        for n in made:
            n.close()


def serve(node):
    ((handle,),) = node.ble.gatts_register_services(((SVC, ((CHR, FLAG_READ | FLAG_WRITE | FLAG_NOTIFY),)),))
    node.ble.gatts_write(handle, b"hello")
    node.ble.gap_advertise(20_000, b"\x02\x01\x06")
    return handle


def connect(central, peripheral, n=1):
    central.ble.gap_connect(*peripheral.ble.config("mac"))
    return central.wait(_IRQ_PERIPHERAL_CONNECT, count=n)[0]


def test_radio_off_call_raises_enodev(nodes):
    (b,) = nodes
    b.ble.active(False)
    with pytest.raises(OSError) as info:
        b.ble.gap_advertise(20_000, b"")
    assert info.value.errno == errno.ENODEV


def test_read_on_unknown_connection_raises_enotconn(nodes):
    (b,) = nodes
    with pytest.raises(OSError) as info:
        b.ble.gattc_read(42, 3)
    assert info.value.errno == errno.ENOTCONN


def test_gatts_write_to_unknown_handle_raises_einval(nodes):
    (b,) = nodes
    with pytest.raises(OSError) as info:
        b.ble.gatts_write(999, b"x")
    assert info.value.errno == errno.EINVAL


@pytest.mark.boards(2)
def test_central_reads_and_writes_a_peripheral(nodes):
    p, c = nodes
    handle = serve(p)
    conn = connect(c, p)
    c.ble.gattc_read(conn, handle)
    assert c.wait(_IRQ_GATTC_READ_RESULT)[2] == b"hello"
    c.ble.gattc_write(conn, handle, b"world", 1)
    assert p.wait(_IRQ_GATTS_WRITE)[1] == handle
    assert p.ble.gatts_read(handle) == b"world"


@pytest.mark.boards(2)
def test_read_of_handle_0_raises_einval_at_the_call_and_reports_nothing_later(nodes):
    p, c = nodes
    handle = serve(p)
    conn = connect(c, p)
    with pytest.raises(OSError) as info:
        c.ble.gattc_read(conn, 0)
    assert info.value.errno == errno.EINVAL
    c.ble.gattc_read(conn, handle)          # the next read's events follow at once
    c.wait(_IRQ_GATTC_READ_DONE)
    assert [d for e, d in c.events if e == _IRQ_GATTC_READ_DONE] == [(conn, handle, 0)]


@pytest.mark.boards(2)
def test_register_services_while_connected_raises_ebusy(nodes):
    p, c = nodes
    serve(p)
    connect(c, p)
    p.wait(_IRQ_CENTRAL_CONNECT)
    with pytest.raises(OSError) as info:
        p.ble.gatts_register_services(((SVC, ((CHR, FLAG_READ),)),))
    assert info.value.errno == errno.EBUSY


@pytest.mark.boards(2)
def test_register_services_after_the_connection_ends_is_accepted(nodes):
    p, c = nodes
    serve(p)
    conn = connect(c, p)
    p.wait(_IRQ_CENTRAL_CONNECT)
    assert c.ble.gap_disconnect(conn)
    p.wait(_IRQ_CENTRAL_DISCONNECT)
    ((handle,),) = p.ble.gatts_register_services(((SVC, ((CHR, FLAG_READ),)),))
    assert handle > 0


@pytest.mark.boards(2)
def test_script_polling_with_idle_sees_a_read_result_only_with_its_done(nodes):
    from blebridge.micropython import runtime
    p, c = nodes
    handle = serve(p)
    conn = connect(c, p)
    flag, order = [], []

    def irq(event, data):
        if event == _IRQ_GATTC_READ_RESULT:
            flag.append(1)
            c.ble.config("mtu")     # a call to the same board between the batch's two handlers
            order.append("result")
        elif event == _IRQ_GATTC_READ_DONE:
            order.append("done")

    c.ble.irq(irq)
    for _ in range(20):
        flag.clear()
        c.ble.gattc_read(conn, handle)
        deadline = time.monotonic() + 5
        while not flag and time.monotonic() < deadline:
            runtime.idle()
        order.append("script")
    assert order == ["result", "done", "script"] * 20


@pytest.mark.boards(3)
def test_two_centrals_on_one_peripheral_get_their_own_notifications(nodes):
    p, c1, c2 = nodes
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


@pytest.mark.boards(3)
def test_peripheral_that_is_also_a_central(nodes):
    sensor, relay, phone = nodes
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


@pytest.mark.boards(2)
def test_reconnecting_many_times_does_not_leak_handles(nodes):
    p, c = nodes
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
    assert c.ble._channels == {} and c.ble._discoveries == {}
    assert c.ble.gap_disconnect(conn) is False


# -- Security at the board: characteristics that need an encrypted / authenticated link ----------
# MicroPython's permission flags (docs: bluetooth.BLE.gatts_register_services).
_FLAG_READ_ENCRYPTED = 0x0200
_FLAG_READ_AUTHENTICATED = 0x0400
_FLAG_WRITE_ENCRYPTED = 0x1000
_FLAG_WRITE_AUTHENTICATED = 0x2000
_FLAG_READ_LESC = 0x10000      # blebridge: read needs LE Secure Connections (schema constants.flag)
# ATT error codes (Core 5.4 Vol 3 Part F 3.4.1.1), the status of _IRQ_GATTC_READ/WRITE_DONE.
ATT_INSUFFICIENT_AUTHENTICATION = 0x05
ATT_INSUFFICIENT_ENCRYPTION = 0x0F
_IO_DISPLAY_ONLY = 0
_IO_KEYBOARD_ONLY = 2
_IO_NO_INPUT_OUTPUT = 3
_PASSKEY_ACTION_INPUT = 2
_PASSKEY_ACTION_DISPLAY = 3
PASSKEY = 123456
SECURED_VALUE = b"secured"

# access -> (flag needing encryption, flag needing authentication, the properties it needs).
_SECURED = {
    "read": (_FLAG_READ_ENCRYPTED, _FLAG_READ_AUTHENTICATED, FLAG_READ),
    "write": (_FLAG_WRITE_ENCRYPTED, _FLAG_WRITE_AUTHENTICATED, FLAG_WRITE),
}


def serve_secured(node, access, level):
    """Advertise one characteristic whose `access` ("read"/"write") needs `level` security."""
    encrypted, authenticated, prop = _SECURED[access]
    flags = prop | FLAG_READ | (encrypted if level == "encrypted" else authenticated)
    ((handle,),) = node.ble.gatts_register_services(((SVC, ((CHR, flags),)),))
    node.ble.gatts_write(handle, SECURED_VALUE)
    node.ble.gap_advertise(20_000, b"\x02\x01\x06")
    return handle


def access_status(central, conn, handle, access, n=1):
    """Status of the n'th read (or write with response) of handle by central."""
    if access == "read":
        central.ble.gattc_read(conn, handle)
        return central.wait(_IRQ_GATTC_READ_DONE, count=n)[2]
    central.ble.gattc_write(conn, handle, b"written", 1)
    return central.wait(_IRQ_GATTC_WRITE_DONE, count=n)[2]


def pair(central, peripheral, conn, mitm, bond=False, le_secure=False):
    """Pair central with peripheral; with mitm by passkey entry (the peripheral displays it, the
    central types it), else Just Works; LE Secure Connections or legacy pairing.
    Returns the central's _IRQ_ENCRYPTION_UPDATE data."""
    for node in (central, peripheral):
        node.ble.config(le_secure=le_secure)
    if mitm:
        peripheral.ble.config(io=_IO_DISPLAY_ONLY, mitm=True, bond=bond)
        central.ble.config(io=_IO_KEYBOARD_ONLY, mitm=True, bond=bond)
        peripheral.answers[_IRQ_PASSKEY_ACTION] = \
            lambda d: peripheral.ble.gap_passkey(d[0], _PASSKEY_ACTION_DISPLAY, PASSKEY)
        central.answers[_IRQ_PASSKEY_ACTION] = \
            lambda d: central.ble.gap_passkey(d[0], _PASSKEY_ACTION_INPUT, PASSKEY)
    else:
        for node in (central, peripheral):
            node.ble.config(io=_IO_NO_INPUT_OUTPUT, mitm=False, bond=bond)
    central.ble.gap_pair(conn)
    return central.wait(_IRQ_ENCRYPTION_UPDATE)


@pytest.mark.boards(2)
@pytest.mark.parametrize("level", ["encrypted", "authenticated"])
@pytest.mark.parametrize("access", ["read", "write"])
def test_unpaired_peer_gets_insufficient_authentication(nodes, access, level):
    # Core 5.4 Vol 3 Part C 10.3.1: no LTK with the peer -> Insufficient Authentication (so it
    # pairs), whether the attribute needs encryption only or MITM protection too (as NimBLE).
    p, c = nodes
    handle = serve_secured(p, access, level)
    conn = connect(c, p)
    assert access_status(c, conn, handle, access) == ATT_INSUFFICIENT_AUTHENTICATION


@pytest.mark.boards(2)
def test_write_refused_for_security_leaves_the_value_unchanged(nodes):
    p, c = nodes
    handle = serve_secured(p, "write", "encrypted")
    conn = connect(c, p)
    assert access_status(c, conn, handle, "write") == ATT_INSUFFICIENT_AUTHENTICATION
    assert p.ble.gatts_read(handle) == SECURED_VALUE
    assert _IRQ_GATTS_WRITE not in [e for e, _ in p.events]


@pytest.mark.boards(2)
@pytest.mark.parametrize("access", ["read", "write"])
def test_encrypted_access_succeeds_after_just_works_pairing(nodes, access):
    p, c = nodes
    handle = serve_secured(p, access, "encrypted")
    conn = connect(c, p)
    assert access_status(c, conn, handle, access) == ATT_INSUFFICIENT_AUTHENTICATION
    _conn, encrypted, authenticated, _bonded, _key_size = pair(c, p, conn, mitm=False)
    assert (encrypted, authenticated) == (1, 0)
    assert access_status(c, conn, handle, access, n=2) == 0


@pytest.mark.boards(2)
@pytest.mark.parametrize("access", ["read", "write"])
def test_authenticated_access_after_just_works_pairing_gets_insufficient_authentication(nodes, access):
    p, c = nodes
    handle = serve_secured(p, access, "authenticated")
    conn = connect(c, p)
    pair(c, p, conn, mitm=False)
    assert access_status(c, conn, handle, access) == ATT_INSUFFICIENT_AUTHENTICATION


@pytest.mark.boards(2)
@pytest.mark.parametrize("access", ["read", "write"])
def test_authenticated_access_succeeds_after_passkey_pairing(nodes, access):
    p, c = nodes
    handle = serve_secured(p, access, "authenticated")
    conn = connect(c, p)
    assert access_status(c, conn, handle, access) == ATT_INSUFFICIENT_AUTHENTICATION
    _conn, encrypted, authenticated, _bonded, _key_size = pair(c, p, conn, mitm=True)
    assert (encrypted, authenticated) == (1, 1)
    assert access_status(c, conn, handle, access, n=2) == 0


@pytest.mark.boards(2)
def test_secured_read_returns_the_value_and_write_stores_it(nodes):
    p, c = nodes
    handle = serve_secured(p, "write", "encrypted")
    conn = connect(c, p)
    pair(c, p, conn, mitm=False)
    assert access_status(c, conn, handle, "write") == 0
    assert p.wait(_IRQ_GATTS_WRITE)[1] == handle and p.ble.gatts_read(handle) == b"written"
    c.ble.gattc_read(conn, handle)
    assert c.wait(_IRQ_GATTC_READ_RESULT)[2] == b"written"


@pytest.mark.boards(2)
def test_bonded_peer_on_an_unencrypted_link_gets_insufficient_encryption(nodes):
    # Core 5.4 Vol 3 Part C 10.3.1: with an LTK the peer is told to encrypt, not to pair again.
    p, c = nodes
    handle = serve_secured(p, "read", "encrypted")
    conn = connect(c, p)
    assert pair(c, p, conn, mitm=False, bond=True)[3] == 1
    assert c.ble.gap_disconnect(conn)
    p.wait(_IRQ_CENTRAL_DISCONNECT)
    p.ble.gap_advertise(20_000, b"\x02\x01\x06")
    conn = connect(c, p, n=2)
    assert access_status(c, conn, handle, "read") == ATT_INSUFFICIENT_ENCRYPTION


@pytest.mark.boards(2)
def test_subscribing_to_a_secured_value_needs_the_same_security(nodes):
    # NimBLE's rule (the CCCD write needs the security of the value's accesses), kept by every port.
    p, c = nodes
    ((handle,),) = p.ble.gatts_register_services(
        ((SVC, ((CHR, FLAG_READ | FLAG_NOTIFY | _FLAG_READ_ENCRYPTED),)),))
    p.ble.gap_advertise(20_000, b"\x02\x01\x06")
    conn = connect(c, p)
    cccd = handle + 1   # the CCCD is the value's first descriptor on every stack
    c.ble.gattc_write(conn, cccd, b"\x01\x00", 1)
    assert c.wait(_IRQ_GATTC_WRITE_DONE)[2] == ATT_INSUFFICIENT_AUTHENTICATION
    pair(c, p, conn, mitm=False)
    c.ble.gattc_write(conn, cccd, b"\x01\x00", 1)
    assert c.wait(_IRQ_GATTC_WRITE_DONE, count=2)[2] == 0


@pytest.mark.boards(2)
def test_bonded_central_re_encrypts_with_gap_pair_and_reads_again(nodes):
    # NimBLE and nrf_sd: gap_pair on a central with a bond encrypts with the stored key, no passkey.
    p, c = nodes
    handle = serve_secured(p, "read", "authenticated")
    conn = connect(c, p)
    pair(c, p, conn, mitm=True, bond=True)
    assert c.ble.gap_disconnect(conn)
    p.wait(_IRQ_CENTRAL_DISCONNECT)
    p.ble.gap_advertise(20_000, b"\x02\x01\x06")
    conn = connect(c, p, n=2)
    assert access_status(c, conn, handle, "read") == ATT_INSUFFICIENT_ENCRYPTION
    passkey_questions = len([e for e, _ in c.events + p.events if e == _IRQ_PASSKEY_ACTION])
    c.ble.gap_pair(conn)
    _conn, encrypted, authenticated, bonded, _key_size = c.wait(_IRQ_ENCRYPTION_UPDATE, count=2)
    assert (encrypted, authenticated, bonded) == (1, 1, 1)
    assert access_status(c, conn, handle, "read", n=2) == 0
    assert len([e for e, _ in c.events + p.events if e == _IRQ_PASSKEY_ACTION]) == passkey_questions


@pytest.mark.boards(2)
@pytest.mark.parametrize("le_secure, status", [(False, ATT_INSUFFICIENT_AUTHENTICATION), (True, 0)],
                         ids=["legacy", "le_secure"])
def test_lesc_read_needs_le_secure_connections_pairing(nodes, le_secure, status):
    p, c = nodes
    ((handle,),) = p.ble.gatts_register_services(((SVC, ((CHR, FLAG_READ | _FLAG_READ_LESC),)),))
    p.ble.gap_advertise(20_000, b"\x02\x01\x06")
    conn = connect(c, p)
    pair(c, p, conn, mitm=True, le_secure=le_secure)
    assert access_status(c, conn, handle, "read") == status


@pytest.mark.boards(2)
def test_lesc_read_after_re_encrypting_a_legacy_bond_gets_insufficient_authentication(nodes):
    p, c = nodes
    ((handle,),) = p.ble.gatts_register_services(((SVC, ((CHR, FLAG_READ | _FLAG_READ_LESC),)),))
    p.ble.gap_advertise(20_000, b"\x02\x01\x06")
    conn = connect(c, p)
    pair(c, p, conn, mitm=True, bond=True)
    assert c.ble.gap_disconnect(conn)
    p.wait(_IRQ_CENTRAL_DISCONNECT)
    p.ble.gap_advertise(20_000, b"\x02\x01\x06")
    conn = connect(c, p, n=2)
    c.ble.gap_pair(conn)
    assert c.wait(_IRQ_ENCRYPTION_UPDATE, count=2)[1:4] == (1, 1, 1)
    assert access_status(c, conn, handle, "read") == ATT_INSUFFICIENT_AUTHENTICATION


class Script:
    """An example script under `blebridge run` on one board, its output collected line by line."""

    def __init__(self, name, port, env):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-m", "blebridge.script", "--port", port,
                                      str(EXAMPLES / f"{name}.py")], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self._lines = []
        self._ended = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    @property
    def output(self):
        with self._cond:
            return "".join(self._lines)

    def wait_for(self, text, timeout):
        """Wait until the script printed a line containing text (it ended without: AssertionError)."""
        with self._cond:
            printed = self._cond.wait_for(
                lambda: self._ended or any(text in line for line in self._lines), timeout)
            printed = printed and any(text in line for line in self._lines)
        assert printed, f"{self.name} printed no {text!r} within {timeout} s:\n{self.output}"

    def finish(self, timeout):
        """Wait for the script to end; returns (exit status, output). Killed if it overruns."""
        try:
            self.proc.wait(timeout)
        finally:
            self.kill()
        self._reader.join(timeout=5)
        return self.proc.returncode, self.output

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _run_pair(server, client, ports, tmp_path, settle_s=0.0):
    """Run an example peripheral script on ports[0] and its central on ports[1]; both must exit 0.
    The central starts settle_s seconds after the peripheral printed that it advertises."""
    # A fresh bonding store: a bond kept from an earlier run (same board address) would skip pairing.
    env = dict(os.environ, PYTHONPATH=str(ROOT / "host"), BLEBRIDGE_SECRETS_DIR=str(tmp_path / "secrets"))
    s = Script(server, ports[0], env)
    c = None
    try:
        s.wait_for("advertising", SCRIPT_READY_TIMEOUT_S)
        time.sleep(settle_s)
        c = Script(client, ports[1], env)
        c_status, c_out = c.finish(SCRIPT_RUN_TIMEOUT_S)
        assert c_status == 0, f"{client} exited {c_status}:\n{c_out}\n--- {server}:\n{s.output}"
        s_status, s_out = s.finish(SCRIPT_RUN_TIMEOUT_S / 2)
        assert s_status == 0, f"{server} exited {s_status}:\n{s_out}\n--- {client}:\n{c_out}"
        return s_out, c_out
    finally:
        for script in (s, c):
            if script is not None:
                script.kill()


def test_sensor_example_notifies_the_central(board_urls, tmp_path):
    server, client = _run_pair("sensor_peripheral", "sensor_central", board_urls(2), tmp_path)
    assert client.count("notified temperature") == 5 and "central set the interval to 200 ms" in server


def test_uart_example_echoes_lines(board_urls, tmp_path):
    server, client = _run_pair("uart_peripheral", "uart_central", board_urls(2), tmp_path)
    assert "echoed: MICROPYTHON OVER BLEBRIDGE" in client and "received: bye" in server


def test_l2cap_example_transfers_all_bytes(board_urls, tmp_path):
    server, client = _run_pair("l2cap_server", "l2cap_client", board_urls(2), tmp_path)
    assert "received 65536 bytes, 0 wrong" in server


def test_pairing_example_reads_the_secret_after_passkey_pairing(board_urls, tmp_path):
    server, client = _run_pair("pairing_peripheral", "pairing_central", board_urls(2), tmp_path)
    # 0x05 Insufficient Authentication: the central has no bond yet (Core 5.4 Vol 3 Part C 10.3.1).
    assert "read before pairing: ATT status 0x05" in client
    assert "value b'the cake is a lie'" in client and "passkey shown on the display: 123456" in server


def test_irq_after_a_call_runs_while_the_asyncio_loop_idles(board_urls, tmp_path):
    """The event loop waiting counts as the script waiting (as time.sleep_ms does), so the IRQ
    a call causes is not held back until CALL_GRACE_S after the call: the script raises the
    grace to 10 minutes, and gets _IRQ_SCAN_DONE of a 10 ms scan within a minute."""
    script = tmp_path / "scan_done.py"
    script.write_text(
        "import asyncio, bluetooth\n"
        "from blebridge.micropython import runtime\n"
        "runtime.CALL_GRACE_S = 600.0\n"
        "ble = bluetooth.BLE()\n"
        "ble.active(True)\n"
        "done = asyncio.ThreadSafeFlag()\n"
        "def irq(event, data):\n"
        "    if event == 6:  # _IRQ_SCAN_DONE\n"
        "        done.set()\n"
        "ble.irq(irq)\n"
        "async def main():\n"
        "    ble.gap_scan(10)\n"
        "    await asyncio.wait_for(done.wait(), 60)\n"
        "    print('scan done')\n"
        "asyncio.run(main())\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "host"))
    r = subprocess.run([sys.executable, "-m", "blebridge.script", "--port", board_urls(1)[0],
                        str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert (r.returncode, r.stdout) == (0, "scan done\n"), r.stderr
