"""hil.plugin: rig configuration, board URLs and the stale-firmware rule (no boards needed)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil import plugin as hil

REPO = Path(__file__).resolve().parents[2]


def test_rig_file_lists_boards_in_order(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text('[[board]]\nport = "/dev/ttyACM0"\nkind = "feather_nrf52840"\n'
                   '[[board]]\nport = "rfc2217://rig:4000"\nflash = false\nname = "esp"\n')
    got = hil.parse_rig_file(rig)
    assert got.boards == [hil.RigBoard("/dev/ttyACM0", "feather_nrf52840", True, ""),
                          hil.RigBoard("rfc2217://rig:4000", None, False, "esp")]


def test_rig_file_entry_without_port_is_rejected_with_its_number(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text('[[board]]\nport = "/dev/ttyACM0"\n[[board]]\nkind = "esp32dev"\n')
    with pytest.raises(hil.RigError, match="board 2 has no port"):
        hil.parse_rig_file(rig)


def test_rig_file_unknown_key_is_rejected(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text('[[board]]\nport = "/dev/ttyACM0"\nbaud = 9600\n')
    with pytest.raises(hil.RigError, match="unknown keys"):
        hil.parse_rig_file(rig)


def test_example_rig_file_parses():
    assert len(hil.parse_rig_file(REPO / "hil" / "rig.example.toml").boards) == 2


def test_ports_option_wins_over_environment():
    rig = hil.configured_rig(None, ["/dev/ttyACM1"], {hil.ENV_PORTS: "/dev/ttyUSB0"})
    assert [b.port for b in rig.boards] == ["/dev/ttyACM1"]


def test_environment_ports_split_on_commas_and_spaces():
    rig = hil.configured_rig(None, [], {hil.ENV_PORTS: "/dev/ttyACM0, rfc2217://rig:4000 id:ABC"})
    assert [b.port for b in rig.boards] == ["/dev/ttyACM0", "rfc2217://rig:4000", "id:ABC"]


def test_no_configuration_is_no_rig():
    assert not hil.configured_rig(None, [], {}).configured


def test_board_urls_without_rig_are_distinct_sim_names():
    urls = hil.urls_for(hil.Rig(), "tests/sim/test_x.py::test_two[1]", 2)
    assert len(set(urls)) == 2 and all(u.startswith("sim:hil-") for u in urls)


def test_board_urls_without_rig_are_on_the_given_air():
    urls = hil.urls_for(hil.Rig(), "t", 2, sim_air="/tmp/x/air.sock")
    assert all(u.startswith("sim:hil-") and u.endswith("?air=/tmp/x/air.sock") for u in urls)


def test_board_urls_with_rig_are_its_first_ports():
    rig = hil.Rig([hil.RigBoard("/dev/ttyACM0"), hil.RigBoard("/dev/ttyACM1"), hil.RigBoard("x")])
    assert hil.urls_for(rig, "t", 2) == ["/dev/ttyACM0", "/dev/ttyACM1"]


def test_board_urls_skip_when_rig_is_too_small():
    with pytest.raises(pytest.skip.Exception, match="needs 2 boards, the rig .* has 1"):
        hil.urls_for(hil.Rig([hil.RigBoard("/dev/ttyACM0")], source="r.toml"), "t", 2)


@pytest.mark.parametrize("fw, proto, stale", [
    (None, None, True),              # nothing answered: flash
    ("0.1.0", (1, 0), False),        # current
    ("0.0.9", (1, 0), True),         # older firmware
    ("0.1.0", (0, 9), True),         # older protocol
    ("0.2.0", (1, 0), False),        # newer firmware is kept
])
def test_stale_firmware_rule(fw, proto, stale):
    assert hil.is_stale(fw, proto, "0.1.0", (1, 0)) is stale


def test_checkout_firmware_version_is_read_from_bb_config():
    assert hil.checkout_fw_version()[0].isdigit()


@pytest.mark.parametrize("markexpr, hil_run", [
    ("", False),                     # make test
    ("hil", True),                   # make hil
    ("hil and not slow", True),
    ("not hil", False),
    ("slow", False),
    ("hil or slow", True),
])
def test_hil_run_is_a_marker_expression_selecting_hil_tests_only(markexpr, hil_run):
    assert hil.selects_hil(markexpr) is hil_run


def _pytest_without_rig(tmp_path, *args):
    test = tmp_path / "test_needs_rig.py"
    test.write_text("import pytest\n\n@pytest.mark.hil\ndef test_real_board(board_urls):\n"
                    "    assert board_urls(1)[0].startswith('sim:')\n")
    env = {k: v for k, v in os.environ.items() if k not in (hil.ENV_PORTS, "LG_ENV")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "host"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "hil.plugin", *args, "-rs", "-q",
                           "-p", "no:cacheprovider", str(test)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_hil_run_without_rig_skips_with_configuration_hint(tmp_path):
    r = _pytest_without_rig(tmp_path, "-m", "hil")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped" in r.stdout
    assert "--hil-rig" in r.stdout and hil.ENV_PORTS in r.stdout and "hil/README.md" in r.stdout


def test_normal_run_without_rig_runs_hil_tests_on_simulated_boards(tmp_path):
    r = _pytest_without_rig(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout
