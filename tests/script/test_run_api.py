"""blebridge run --api: the runtime chosen per API, and the errors before a script runs."""
import os
import subprocess
import sys

HOST = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "host"))
UNAVAILABLE_CP = "the CircuitPython _bleio API is not available yet in this blebridge version"


def run(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=HOST)
    return subprocess.run([sys.executable, "-m", "blebridge", "run", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_explicit_circuitpython_is_unavailable_with_status_2_and_one_line():
    r = run("--api", "circuitpython", "-c", "print('ran')")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"blebridge: error: {UNAVAILABLE_CP}\n"


def test_explicit_zerynth_is_unavailable_with_status_2():
    r = run("--api", "zerynth", "-c", "print('ran')")
    assert (r.returncode, r.stdout) == (2, "")
    assert "the Zerynth ble API is not available yet in this blebridge version" in r.stderr


def test_detected_circuitpython_is_unavailable_naming_the_import(tmp_path):
    script = tmp_path / "cp.py"
    script.write_text("import board\nimport _bleio\nprint('ran')\n")
    r = run(str(script))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.count("\n") == 1 and UNAVAILABLE_CP in r.stderr and "board, line 1" in r.stderr
    assert "Traceback" not in r.stderr


def test_conflicting_imports_stop_before_the_script_runs():
    r = run("-c", "print('ran')\nimport machine\nimport wireless\n")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.count("\n") == 1
    assert "MicroPython" in r.stderr and "Zerynth" in r.stderr and "--api" in r.stderr


def test_api_option_overrides_detection():
    r = run("--api", "micropython", "-c",
            "try:\n    import _bleio\nexcept ImportError:\n    pass\nimport machine\nprint('mp')")
    assert (r.returncode, r.stdout) == (0, "mp\n"), r.stderr


def test_unknown_api_value_is_a_usage_error():
    r = run("--api", "arduino", "-c", "print('ran')")
    assert (r.returncode, r.stdout) == (2, "")
    assert "invalid choice: 'arduino'" in r.stderr


def test_micropython_shims_follow_the_users_directories_on_sys_path():
    r = run("--api", "micropython", "-c",
            "import sys, bluetooth, micropython, machine, utime\n"
            "shims = [p for p in sys.path if p.replace(chr(92), '/').endswith('blebridge/micropython/shims')]\n"
            "i = sys.path.index(shims[0])\n"
            "print(sys.path[:i] == ['', %r], bluetooth.__file__.startswith(shims[0]))" % HOST)
    assert (r.returncode, r.stdout) == (0, "True True\n"), r.stderr


def test_help_documents_api_and_its_detection():
    r = run("--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "--api {micropython,circuitpython,zerynth}" in text
    assert "micropython if none of these" in text
