"""blebridge's _bleio is the one `import _bleio` gives, and so the one adafruit_ble (PyPI, which
also installs Blinka's bleak-based _bleio) uses, in plain Python programs as well as under
`blebridge run` (circuitpython/binding.py)."""
import os
import subprocess
import sys
from pathlib import Path

import importlib.util

import pytest

HOST = str(Path(__file__).resolve().parents[2] / "host")
RUN_TIMEOUT_S = 90

# Found, not imported: importing adafruit_ble here would import Blinka's _bleio in this process.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("adafruit_ble") is None,
                                reason="adafruit_ble is not installed")


def python(code):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=HOST), timeout=RUN_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_import_blebridge_circuitpython_then_adafruit_ble_uses_blebridges_bleio():
    out = python("import blebridge.circuitpython, adafruit_ble, sys\n"
                 "print(adafruit_ble._bleio.__name__, 'bleak' in sys.modules)")
    assert out == "blebridge.circuitpython._bleio False\n"


def test_adafruit_ble_imported_first_is_rebound_to_blebridges_bleio():
    out = python("import adafruit_ble, adafruit_ble.services.standard.hid as hid\n"
                 "import blebridge.circuitpython, _bleio, sys\n"
                 "ours = sys.modules['blebridge.circuitpython._bleio']\n"
                 "print(_bleio is ours, adafruit_ble._bleio is ours, hid._bleio is ours,\n"
                 "      type(hid._REPORT_REF_DESCR_UUID) is ours.UUID)")
    assert out == "True True True True\n"


def test_bind_is_idempotent():
    out = python("import sys\nfrom blebridge.circuitpython import binding\n"
                 "binding.bind(); binding.bind()\n"
                 "print(sum(isinstance(f, binding.BleioFinder) for f in sys.meta_path))")
    assert out == "1\n"


def test_bleio_submodule_names_of_blinka_are_not_importable_after_binding():
    out = python("import blebridge.circuitpython\n"
                 "try:\n    import _bleio.common\nexcept ImportError:\n    print('refused')")
    assert out == "refused\n"


def test_microcontroller_is_blebridges_in_plain_python():
    out = python("import blebridge.circuitpython, microcontroller\n"
                 "print(microcontroller.__name__, microcontroller.cpu.frequency)")
    assert out == "blebridge.circuitpython.microcontroller 64000000\n"
