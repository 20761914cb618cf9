"""BlebridgeDriver (blebridge.labgrid.driver): handshake, flash when stale, power-cycle."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import attr
import pytest

pytest.importorskip("labgrid")

from labgrid.driver.common import Driver  # noqa: E402
from labgrid.factory import target_factory  # noqa: E402
from labgrid.protocol import PowerProtocol  # noqa: E402

from blebridge.labgrid.coordinator import Coordinator  # noqa: E402
from blebridge.labgrid.driver import BlebridgeDriver, BlebridgeDriverError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@target_factory.reg_driver
@attr.s(eq=False)
class SimBoardPowerDriver(Driver, PowerProtocol):
    """Power of a simulated board stopped with SIGSTOP: cycling it lets the process go on."""

    pid = attr.ib(default=0, validator=attr.validators.instance_of(int))
    cycles = attr.ib(default=0, init=False)

    def on(self):
        os.kill(self.pid, signal.SIGCONT)

    def off(self):
        os.kill(self.pid, signal.SIGSTOP)

    def cycle(self):
        self.cycles += 1
        self.on()


@pytest.fixture
def place_target(free_lab):
    """A labgrid target of the lab's first place, acquired: its NetworkSerialPort and a
    BlebridgeDriver whose flasher records calls instead of running PlatformIO."""
    place = free_lab.places[0]
    with Coordinator(free_lab.address) as coord:
        coord.acquire(place)
        (port,) = coord.serial_ports(place)
    target = target_factory.make_target("board", {
        "resources": [{"NetworkSerialPort": {"host": port.host, "port": port.port, "speed": port.speed}}],
        "drivers": [{"BlebridgeDriver": {}}],
    })
    flashed = []
    driver = target.get_driver(BlebridgeDriver)
    driver.flasher = lambda url, kind, project_dir: flashed.append(url)
    yield target, driver, flashed
    target.cleanup()


def test_handshake_through_the_place_returns_the_board_info(place_target):
    _, driver, _ = place_target
    assert driver.handshake().port == "sim"


def test_prepare_leaves_a_current_board_unflashed(place_target):
    _, driver, flashed = place_target
    assert "is current" in driver.prepare()
    assert flashed == []


def test_prepare_flashes_a_board_older_than_the_checkout(place_target):
    _, driver, flashed = place_target
    driver.wanted_version = lambda: "999.0.0"
    driver.prepare()
    assert flashed == [driver.url()]


def test_prepare_refuses_a_stale_board_when_flashing_is_off(place_target):
    _, driver, flashed = place_target
    driver.wanted_version = lambda: "999.0.0"
    driver.flash = False
    with pytest.raises(BlebridgeDriverError, match="blebridge flash --port"):
        driver.prepare()
    assert flashed == []


def test_power_cycle_without_a_power_driver_is_refused(place_target):
    _, driver, _ = place_target
    with pytest.raises(BlebridgeDriverError, match="no power driver"):
        driver.power_cycle()


@pytest.fixture
def silent_board(tmp_path):
    """A simulated board of its own, stopped (SIGSTOP): it answers nothing until continued."""
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    board = launcher.start_board("silent", air=str(tmp_path / "air.sock"))
    os.kill(board.pid, signal.SIGSTOP)
    yield board
    os.kill(board.pid, signal.SIGCONT)
    board.stop()


def test_prepare_power_cycles_a_silent_board_before_flashing_it(silent_board):
    target = target_factory.make_target("silent", {
        "resources": [{"RawSerialPort": {"port": silent_board.pty}}],
        "drivers": [{"SimBoardPowerDriver": {"pid": silent_board.pid}},
                    {"BlebridgeDriver": {"handshake_timeout": 2.0}}],
    })
    try:
        driver = target.get_driver(BlebridgeDriver)
        driver.flasher = lambda *a: pytest.fail("a board that answers after the power cycle was flashed")
        report = driver.prepare()
        assert "power-cycled" in report and "is current" in report
        assert target.get_driver(SimBoardPowerDriver).cycles == 1
    finally:
        target.cleanup()


def test_environment_file_with_a_remote_place_gives_a_working_driver(free_lab):
    """labgrid's own flow: an acquired place, a target from the environment file (RemotePlace),
    its BlebridgeDriver (the file imports blebridge.labgrid.driver)."""
    place = free_lab.places[1]
    script = textwrap.dedent(f"""
        from labgrid import Environment
        from blebridge.labgrid.coordinator import Coordinator
        with Coordinator({free_lab.address!r}) as coord:
            coord.acquire({place!r})
        env = Environment({str(free_lab.env_file)!r})
        target = env.get_target({place!r})
        print(target.get_driver("BlebridgeDriver").prepare())
        target.cleanup()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "host")), cwd=free_lab.workdir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "is current" in out.stdout
