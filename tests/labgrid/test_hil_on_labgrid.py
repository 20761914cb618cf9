"""The hil plugin's labgrid mode (--lg-env): places acquired per test, shared by xdist workers."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("labgrid")

from hil import plugin as hil  # noqa: E402
from hil.labgrid_rig import PlacePool, load_lab_rig  # noqa: E402

from lab import place_holder  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
#: Seconds for the whole hil suite on the lab (about 5 min on a loaded 2-core machine).
SUITE_TIMEOUT_S = 1500


def test_environment_file_names_the_rigs_places(lab):
    rig = hil.configured_rig(None, None, {}, lg_env=str(lab.env_file))
    assert [p.place for p in rig.lab.places] == lab.places


def test_lg_env_variable_selects_the_labgrid_rig(lab):
    rig = hil.configured_rig(None, None, {"LG_ENV": str(lab.env_file)})
    assert rig.configured and rig.lab is not None


def test_coordinator_option_overrides_the_environment_files(lab):
    rig = load_lab_rig(str(lab.env_file), "lab.example:20408")
    assert rig.coordinator == "lab.example:20408"


def test_target_without_a_remote_place_is_a_rig_error(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("targets:\n  board:\n    drivers:\n      BlebridgeDriver: {}\n")
    with pytest.raises(hil.RigError, match="target board needs exactly one RemotePlace"):
        hil.configured_rig(None, None, {}, lg_env=str(env))


@pytest.fixture
def pools(free_lab):
    """Two pools on the lab, as two xdist workers have."""
    rig = load_lab_rig(str(free_lab.env_file), None)
    a, b = PlacePool(rig, allow_flash=False), PlacePool(rig, allow_flash=False)
    yield a, b
    a.close()
    b.close()


def test_two_workers_get_disjoint_places(pools):
    a, b = pools
    held_a, urls_a = a.acquire(2)
    held_b, urls_b = b.acquire(1)
    assert not set(held_a) & set(held_b)
    assert len(urls_a) == 2 and len(urls_b) == 1


def test_released_places_are_free_again(pools, free_lab):
    a, _ = pools
    held, _ = a.acquire(3)
    a.release_soon(held)
    a.wait_released()
    assert [place_holder(free_lab, p) for p in free_lab.places] == [None, None, None]


def test_more_boards_than_the_lab_has_skips_and_holds_nothing(pools, free_lab):
    a, _ = pools
    with pytest.raises(pytest.skip.Exception, match="needs 4 boards.* have 3"):
        a.acquire(4)
    assert [place_holder(free_lab, p) for p in free_lab.places] == [None, None, None]


@pytest.mark.timeout(SUITE_TIMEOUT_S + 60)
def test_hil_suite_passes_on_the_labs_places_with_two_workers(free_lab, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in (hil.ENV_PORTS, "LG_ENV", "LG_COORDINATOR", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "host")])
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "hil.plugin", "-m", "hil", "-n", "2",
                        "--lg-env", str(free_lab.env_file), "--lg-coordinator", free_lab.address,
                        "-v", "-rfEs", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
                        str(ROOT / "tests")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)
    out = r.stdout + r.stderr
    (tmp_path / "hil-suite.log").write_text(out)     # the whole run, for a failure's details
    failed = [line for line in out.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    assert r.returncode == 0, "\n".join(failed) + f"\n(whole run: {tmp_path / 'hil-suite.log'})\n" + out[-6000:]
    summary = out.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary and "failed" not in summary, summary
    # Both workers ran tests: the suite went through the lab in parallel.
    assert re.search(r"\[gw0\].*PASSED", out) and re.search(r"\[gw1\].*PASSED", out)
