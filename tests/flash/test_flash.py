"""`blebridge flash`: board detection, PlatformIO invocation and errors, udev rules (no boards)."""
from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Optional

import pytest

from blebridge import flash
from blebridge.ports import KNOWN_BOARDS, PortInfo, known_board

REPO = Path(__file__).resolve().parents[2]


def port(device: str, vid: Optional[int], pid: Optional[int], serial: Optional[str] = None,
         product: Optional[str] = None) -> PortInfo:
    return PortInfo(device=device, serial_number=serial, vid=vid, pid=pid, manufacturer=None,
                    product=product, location=None, known=known_board(vid, pid, product))


def fake_comport(device: str, vid: int, pid: int, serial: str = "S1") -> types.SimpleNamespace:
    return types.SimpleNamespace(device=device, serial_number=serial, vid=vid, pid=pid,
                                 manufacturer="m", product="p", location="1-1")


@pytest.mark.parametrize("vid_pid, env", [
    ((0x1915, 0x520F), "nrf52840_dongle"),
    ((0x303A, 0x1001), "esp32s3"),
])
def test_certain_vid_pid_selects_its_env_without_a_handshake(vid_pid, env):
    def probe(_port):
        raise AssertionError("a certain VID:PID must not be probed")
    got, why = flash.detect_env(port("/dev/ttyACM0", *vid_pid), "/dev/ttyACM0", probe)
    assert got == env
    assert f"{vid_pid[0]:04X}:{vid_pid[1]:04X}" in why


@pytest.mark.parametrize("vid_pid", [(0x10C4, 0xEA60), (0x1A86, 0x7523), (0x1A86, 0x55D4),
                                     (0x0403, 0x6001), (0x0403, 0x6015)])
def test_usb_uart_bridge_is_confirmed_by_handshake(vid_pid):
    probed = []

    def probe(p):
        probed.append(p)
        return "esp32s3"
    got, why = flash.detect_env(port("/dev/ttyUSB0", *vid_pid), "/dev/ttyUSB0", probe)
    assert probed == ["/dev/ttyUSB0"]
    assert got == "esp32s3"
    assert "handshake says esp32s3" in why


def no_probe(_port):
    raise AssertionError("the USB product string decides: no handshake")


@pytest.mark.parametrize("vid_pid, product, env", [
    ((0x239A, 0x8029), "Feather nRF52840 Express", "feather_nrf52840"),  # Adafruit core firmware
    ((0x239A, 0x0029), "Feather nRF52840 Express", "feather_nrf52840"),  # Adafruit bootloader
    ((0x239A, 0x8029), "nRF52840 Dongle", "nrf52840_dongle"),  # our dongle board definition
    ((0x239A, 0x0029), "PCA10059", "nrf52840_dongle"),  # Adafruit bootloader for pca10059
])
def test_feather_and_dongle_sharing_a_vid_pid_are_told_apart_by_usb_product(vid_pid, product, env):
    got, why = flash.detect_env(port("/dev/ttyACM0", *vid_pid, product=product), "/dev/ttyACM0", no_probe)
    assert got == env
    assert product in why


def test_shared_nrf_vid_pid_without_a_telling_product_is_confirmed_by_handshake():
    got, why = flash.detect_env(port("/dev/ttyACM0", 0x239A, 0x8029, product="CDC"), "/dev/ttyACM0",
                                lambda p: "nrf52840_dongle")
    assert got == "nrf52840_dongle"
    assert "handshake says nrf52840_dongle" in why


def test_shared_nrf_bootloader_without_a_telling_product_asks_for_board():
    def probe(_port):
        raise AssertionError("a bootloader runs no firmware to probe")
    with pytest.raises(flash.CliError) as ei:
        flash.detect_env(port("/dev/ttyACM0", 0x239A, 0x0029, product="nRF UF2"), "/dev/ttyACM0", probe)
    assert "239A:0029" in str(ei.value)
    assert "--board feather_nrf52840" in ei.value.hint and "--board nrf52840_dongle" in ei.value.hint


def test_list_names_a_dongle_by_its_usb_product(monkeypatch):
    import serial.tools.list_ports as lp
    from blebridge.ports import list_ports
    dongle = fake_comport("/dev/ttyACM2", 0x239A, 0x0029, "D1")
    dongle.product = "PCA10059"
    monkeypatch.setattr(lp, "comports", lambda include_links=False: [dongle])
    (info,) = list_ports()
    assert info.known is not None and info.known.kind == "nrf52840-dongle" and info.known.bootloader


def test_dongle_in_nordic_open_bootloader_is_refused_with_the_bootloader_steps(monkeypatch):
    _flash_setup(monkeypatch, 0)
    monkeypatch.setattr(flash, "list_ports", lambda: [port("/dev/ttyACM0", 0x1915, 0x521F, "N1")])
    with pytest.raises(flash.CliError) as ei:
        flash.flash("/dev/ttyACM0", board="nrf52840_dongle", project_dir=str(REPO), verify_after=False,
                    out=lambda s: None)
    assert "Nordic's open DFU bootloader" in str(ei.value)
    assert "Adafruit nRF52 bootloader" in ei.value.hint
    assert FakePopen.calls == []


def test_usb_uart_bridge_without_firmware_is_assumed_esp32dev_and_says_so():
    got, why = flash.detect_env(port("/dev/ttyUSB0", 0x10C4, 0xEA60), "/dev/ttyUSB0", lambda p: None)
    assert got == "esp32dev"
    assert "assumed" in why and "--board" in why


def test_unknown_usb_device_asks_for_board():
    with pytest.raises(flash.CliError) as ei:
        flash.detect_env(port("/dev/ttyACM3", 0x1234, 0x5678), "/dev/ttyACM3")
    assert "1234:5678" in str(ei.value)
    assert "--board" in ei.value.hint and "esp32dev" in ei.value.hint


def test_auto_port_picks_known_board_from_list_ports(monkeypatch):
    import serial.tools.list_ports as lp
    monkeypatch.setattr(lp, "comports", lambda include_links=False: [
        fake_comport("/dev/ttyS0", None, None), fake_comport("/dev/ttyACM1", 0x239A, 0x0029, "FEATHER1")])
    device, info = flash.resolve_port("auto")
    assert device == "/dev/ttyACM1"
    assert info is not None and info.known is not None and info.known.bootloader


def test_auto_port_without_boards_is_an_error(monkeypatch):
    import serial.tools.list_ports as lp
    monkeypatch.setattr(lp, "comports", lambda include_links=False: [])
    with pytest.raises(flash.CliError, match="no known board"):
        flash.resolve_port("auto")


def test_sim_port_cannot_be_flashed():
    with pytest.raises(flash.CliError, match="simulated"):
        flash.resolve_port("sim:alice", ports=[])


def test_board_leaving_bootloader_is_reopened_by_serial_number():
    info = port("/dev/ttyACM0", 0x239A, 0x0029, serial="ABC123")
    assert flash._reopen_spec("/dev/ttyACM0", info) == "id:ABC123"
    assert flash._reopen_spec("/dev/ttyACM0", port("/dev/ttyACM0", 0x239A, 0x8029, "ABC123")) == "/dev/ttyACM0"


def test_missing_platformio_says_how_to_install(monkeypatch):
    monkeypatch.setattr(flash.shutil, "which", lambda name: None)
    monkeypatch.setattr(flash.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(flash.CliError) as ei:
        flash.find_pio()
    assert "PlatformIO is not installed" in str(ei.value)
    assert "pip install platformio" in ei.value.hint


def test_platformio_module_without_script_on_path_is_run_with_python(monkeypatch):
    monkeypatch.setattr(flash.shutil, "which", lambda name: None)
    monkeypatch.setattr(flash.importlib.util, "find_spec", lambda name: object())
    assert flash.find_pio() == [sys.executable, "-m", "platformio"]


def test_upload_command_line():
    cmd = flash.pio_upload_command(["/usr/bin/pio"], Path("/src/bb"), "esp32dev", "/dev/ttyUSB0")
    assert cmd == ["/usr/bin/pio", "run", "--project-dir", "/src/bb", "--environment", "esp32dev",
                   "--target", "upload", "--upload-port", "/dev/ttyUSB0"]


class FakePopen:
    calls: list = []

    def __init__(self, cmd, **kw):
        FakePopen.calls.append((cmd, kw))
        self.stdout = iter(["Building .pio/build/esp32dev/firmware.bin\n", "Writing at 0x00010000... (50 %)\n"])

    def wait(self):
        return FakePopen.returncode


def _flash_setup(monkeypatch, returncode):
    FakePopen.calls = []
    FakePopen.returncode = returncode
    monkeypatch.setattr(flash.shutil, "which", lambda name: "/opt/pio" if name == "pio" else None)
    monkeypatch.setattr(flash.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(flash, "check_port_free", lambda p: None)
    monkeypatch.setattr(flash, "list_ports", lambda: [port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP1")])
    monkeypatch.setattr(flash, "probe_board_kind", lambda p: None)


def test_flash_runs_pio_upload_and_streams_its_output(monkeypatch):
    _flash_setup(monkeypatch, 0)
    lines = []
    assert flash.flash("/dev/ttyUSB0", project_dir=str(REPO), verify_after=False, out=lines.append) == 0
    (cmd, kw), = FakePopen.calls
    assert cmd == ["/opt/pio", "run", "--project-dir", str(REPO), "--environment", "esp32dev",
                   "--target", "upload", "--upload-port", "/dev/ttyUSB0"]
    assert kw["stdout"] is subprocess.PIPE and kw["stderr"] is subprocess.STDOUT
    assert "Writing at 0x00010000... (50 %)" in lines


def test_board_option_overrides_detection(monkeypatch):
    _flash_setup(monkeypatch, 0)
    flash.flash("/dev/ttyUSB0", board="esp32-s3", project_dir=str(REPO), verify_after=False, out=lambda s: None)
    assert FakePopen.calls[0][0][FakePopen.calls[0][0].index("--environment") + 1] == "esp32s3"


def test_failed_upload_names_the_command_and_exit_code(monkeypatch):
    _flash_setup(monkeypatch, 1)
    with pytest.raises(flash.CliError, match=r"pio run -e esp32dev -t upload failed \(exit code 1\)"):
        flash.flash("/dev/ttyUSB0", project_dir=str(REPO), verify_after=False, out=lambda s: None)


def test_flash_checks_protocol_version_after_upload(monkeypatch):
    _flash_setup(monkeypatch, 0)
    checked = []
    monkeypatch.setattr(flash, "verify", lambda p: checked.append(p) or (1, 0))
    flash.flash("/dev/ttyUSB0", project_dir=str(REPO), out=lambda s: None)
    assert checked == ["/dev/ttyUSB0"]


def test_busy_port_error(monkeypatch):
    import serial
    exc = serial.SerialException(16, "could not open port /dev/ttyUSB0: [Errno 16] Device or resource busy")
    monkeypatch.setattr(serial, "Serial", lambda *a, **k: (_ for _ in ()).throw(exc))
    with pytest.raises(flash.CliError, match="busy") as ei:
        flash.check_port_free("/dev/ttyUSB0")
    assert "another program" in ei.value.hint


def test_permission_error_points_at_udev_rules(monkeypatch):
    import serial
    exc = serial.SerialException(13, "could not open port /dev/ttyACM0: [Errno 13] Permission denied")
    monkeypatch.setattr(serial, "Serial", lambda *a, **k: (_ for _ in ()).throw(exc))
    with pytest.raises(flash.CliError, match="permission denied") as ei:
        flash.check_port_free("/dev/ttyACM0")
    assert "99-blebridge.rules" in ei.value.hint and "dialout" in ei.value.hint


def test_project_dir_without_platformio_ini_is_an_error(tmp_path):
    with pytest.raises(flash.CliError, match="no blebridge firmware sources"):
        flash.find_project_dir(str(tmp_path))


def test_checkout_is_found_as_project_dir(monkeypatch):
    monkeypatch.delenv("BLEBRIDGE_FIRMWARE_DIR", raising=False)
    assert flash.find_project_dir() == REPO


def test_udev_rules_cover_every_known_vid_pid():
    text = flash.udev_rules_path().read_text()
    rules = set(re.findall(r'ATTRS\{idVendor\}=="([0-9a-f]{4})", ATTRS\{idProduct\}=="([0-9a-f]{4})"', text))
    expected = {(f"{v:04x}", f"{p:04x}") for v, p in KNOWN_BOARDS}
    assert expected <= rules


def test_every_board_kind_maps_to_an_env_of_platformio_ini():
    envs = set(re.findall(r"^\[env:([\w-]+)\]", "\n".join(
        p.read_text() for p in [REPO / "platformio.ini", *REPO.glob("firmware/ports/*/platformio-*.ini")]),
        re.M))
    assert {b.kind for b in KNOWN_BOARDS.values()} <= set(flash.BOARD_ENVS)
    assert set(flash.BOARD_ENVS.values()) == set(flash.ENVS)
    missing = set(flash.ENVS) - envs
    # nrf envs come from the nrf_sd port's ini; only ours are required here when it is absent.
    assert not (missing - {"feather_nrf52840", "nrf52840_dongle"})


def test_flash_subcommand_is_registered():
    import argparse
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    flash.add_parser(sub)
    args = parser.parse_args(["flash", "--board", "esp32dev", "--port", "/dev/ttyUSB0"])
    assert (args.board, args.port, args.func) == ("esp32dev", "/dev/ttyUSB0", flash._cmd_flash)


def test_a_device_path_that_does_not_exist_is_no_such_port():
    with pytest.raises(flash.CliError, match="no such port"):
        flash.resolve_port("/dev/ttyBLEBRIDGE-NONE", ports=[])


def test_dongle_board_definition_uploads_by_serial_dfu_and_names_the_dongle_over_usb():
    import configparser
    import json
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(REPO / "platformio.ini")
    boards_dir = REPO / ini["platformio"]["boards_dir"]
    board = json.loads((boards_dir / "nrf52840_dongle_adafruit.json").read_text())
    assert board["upload"]["protocol"] == "nrfutil" and "nrfutil" in board["upload"]["protocols"]
    # What our firmware on the dongle enumerates as: one of the shared VID:PIDs, with a
    # product string that `blebridge flash` maps to the dongle.
    vid, pid = (int(x, 16) for x in board["build"]["hwids"][0])
    got, _why = flash.detect_env(port("/dev/ttyACM0", vid, pid, product=board["build"]["usb_product"]),
                                 "/dev/ttyACM0", no_probe)
    assert got == "nrf52840_dongle"
