"""examples/circuitpython run as a pair: the peripheral under `blebridge run`, the central as
plain Python (adafruit_ble on blebridge's _bleio as a library), and the reverse."""
import subprocess
import sys

import pytest

from cp_scripts import ROOT, SCRIPT_RUN_TIMEOUT_S, Script, script_env

# Two scripts, each starting a board, scans of up to 30 s, on a loaded PC.
pytestmark = [pytest.mark.hil, pytest.mark.timeout(300)]
EXAMPLES = ROOT / "examples" / "circuitpython"


class PlainScript(Script):
    """The script as plain Python: ``python SCRIPT --port PORT``."""

    def __init__(self, path, port, env):
        self.name = path.name
        self.proc = subprocess.Popen([sys.executable, str(path), "--port", port], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self._start_reader()


def _pair(ports, tmp_path, peripheral_under_run):
    env = script_env(tmp_path)
    make_p = Script if peripheral_under_run else PlainScript
    make_c = PlainScript if peripheral_under_run else Script
    p = make_p(EXAMPLES / "sensor_peripheral.py", ports[0], env)
    c = None
    try:
        p.wait_for("advertising")
        c = make_c(EXAMPLES / "sensor_central.py", ports[1], env)
        c_status, c_out = c.finish()
        assert c_status == 0, f"central exited {c_status}:\n{c_out}\n--- peripheral:\n{p.output}"
        p_status, p_out = p.finish(SCRIPT_RUN_TIMEOUT_S / 2)
        assert p_status == 0, f"peripheral exited {p_status}:\n{p_out}\n--- central:\n{c_out}"
        return p_out, c_out
    finally:
        for s in (p, c):
            if s is not None:
                s.kill()


@pytest.mark.parametrize("peripheral_under_run", [True, False], ids=["peripheral-run", "central-run"])
def test_sensor_example_notifies_five_readings_at_the_interval_the_central_set(
        board_urls, tmp_path, peripheral_under_run):
    p_out, c_out = _pair(board_urls(2), tmp_path, peripheral_under_run)
    assert c_out.count("notified temperature: ") == 5 and c_out.rstrip().endswith("done")
    assert "the last interval was 200 ms" in p_out
