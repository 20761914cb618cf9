"""Make hil.plugin's fixtures (boards, board_urls, hil_rig) available to these tests in every run.

`make hil` loads the plugin with -p hil.plugin (and its command-line options); a plain pytest
run gets it here, configured from BLEBRIDGE_HIL_PORTS only, so without a rig the boards are
simulated and tests marked hil are skipped with the message saying how to configure one.
"""
import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("hil.plugin"):
        config.pluginmanager.import_plugin("hil.plugin")
