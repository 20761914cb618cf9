"""examples/zerynth (blebridge's own scripts in Zerynth's style, standing for Zerynth's BLE
examples) under `blebridge run --api zerynth`, each checked by a peer written with MicroPython's
`bluetooth` on another simulated board (conformance/zerynth/pairs.py; `make conformance
ZERYNTH=...` runs Zerynth's own examples the same way)."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "conformance" / "zerynth"))
import pairs  # noqa: E402

EXAMPLES = ROOT / "examples" / "zerynth"
CHECKS = {c.name: c for c in pairs.our_checks()}


@pytest.mark.timeout(pairs.READY_TIMEOUT_S + pairs.CHECK_TIMEOUT_S + 4 * pairs.STOP_TIMEOUT_S + 60)
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_is_checked_by_its_peer(name, tmp_path):
    check = CHECKS[name]
    env = pairs.base_env(os.environ["BLEBRIDGE_AIR"], tmp_path)
    boards = (f"zt-{os.getpid()}-{name}-z", f"zt-{os.getpid()}-{name}-p")
    outcome = pairs.run_check(check, EXAMPLES, boards, env)
    assert outcome.ok, f"{outcome.why}\n--- zerynth:\n{outcome.zerynth}\n--- peer:\n{outcome.peer}"


def test_every_example_has_a_check():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(pairs.OURS.values())
