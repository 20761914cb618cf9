"""`sim:NAME?stack=nimble`: the stack option, its errors, and how the launcher finds the NimBLE
board binary. Nothing here needs NimBLE built (tests/sim/test_nimble_board.py does)."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from blebridge.errors import PortOpenError
from blebridge.transport.sim import open_sim, parse_sim_spec, parse_sim_stack

ROOT = Path(__file__).resolve().parents[2]


def test_stack_option_is_returned():
    assert parse_sim_stack("sim:alice?stack=nimble") == "nimble"


def test_stack_option_is_none_when_absent():
    assert parse_sim_stack("sim:alice?air=/tmp/a.sock") is None


def test_stack_option_keeps_name_and_air():
    assert parse_sim_spec("sim:alice?stack=nimble&air=/tmp/a.sock") == ("alice", "/tmp/a.sock")


def test_unknown_stack_is_a_port_open_error_naming_the_stacks():
    with pytest.raises(PortOpenError) as info:
        parse_sim_stack("sim:alice?stack=zephyr")
    assert "zephyr" in str(info.value) and "nimble" in str(info.value)


def test_launcher_default_stack_is_bumble(monkeypatch):
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    monkeypatch.delenv("BLEBRIDGE_SIM_STACK", raising=False)
    assert launcher.default_stack() == "bumble"


def test_launcher_default_stack_comes_from_the_environment(monkeypatch):
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    monkeypatch.setenv("BLEBRIDGE_SIM_STACK", "nimble")
    assert launcher.default_stack() == "nimble"


def test_launcher_refuses_an_unknown_stack_in_the_environment(monkeypatch):
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    monkeypatch.setenv("BLEBRIDGE_SIM_STACK", "zephyr")
    with pytest.raises(ValueError, match="BLEBRIDGE_SIM_STACK"):
        launcher.default_stack()


def test_nimble_binary_from_the_environment_must_be_executable(monkeypatch, tmp_path):
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    plain = tmp_path / "bb_nimble_sim"
    plain.write_text("")
    monkeypatch.setenv("BLEBRIDGE_NIMBLE_SIM", str(plain))
    with pytest.raises(FileNotFoundError, match="BLEBRIDGE_NIMBLE_SIM"):
        launcher.firmware_path("nimble")


def test_nimble_binary_from_the_environment_is_used(monkeypatch, tmp_path):
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    exe = tmp_path / "bb_nimble_sim"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("BLEBRIDGE_NIMBLE_SIM", str(exe))
    assert launcher.firmware_path("nimble") == str(exe)


def test_missing_nimble_binary_names_make_nimble_sim(monkeypatch, tmp_path):
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    monkeypatch.delenv("BLEBRIDGE_NIMBLE_SIM", raising=False)
    monkeypatch.setattr(launcher, "_REPO_ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match="make nimble-sim"):
        launcher.firmware_path("nimble")


def test_opening_a_nimble_board_without_its_binary_says_how_to_build_it(monkeypatch, tmp_path):
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    monkeypatch.delenv("BLEBRIDGE_NIMBLE_SIM", raising=False)
    monkeypatch.setattr(launcher, "_REPO_ROOT", tmp_path)
    with pytest.raises(PortOpenError) as info:
        open_sim(f"sim:nobin?stack=nimble&air={tmp_path}/air.sock")
    assert "make nimble-sim" in str(info.value)


def test_start_board_refuses_an_unknown_stack():
    pytest.importorskip("bumble")
    from blebridge.sim import launcher
    with pytest.raises(ValueError, match="unknown stack"):
        launcher.start_board("alice", stack="zephyr")


def test_conformance_stacks_are_parsed_per_instance():
    sys.path.insert(0, str(ROOT / "conformance"))
    try:
        from run_conformance import parse_stacks
    finally:
        sys.path.remove(str(ROOT / "conformance"))
    assert parse_stacks("nimble,bumble") == ("nimble", "bumble")


def test_conformance_refuses_an_unknown_stack():
    sys.path.insert(0, str(ROOT / "conformance"))
    try:
        from run_conformance import parse_stacks
    finally:
        sys.path.remove(str(ROOT / "conformance"))
    with pytest.raises(ValueError, match="zephyr"):
        parse_stacks("nimble,zephyr")
