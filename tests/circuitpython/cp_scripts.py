"""Running the scripts of tests/circuitpython/scripts (and examples) under `blebridge run` on
the boards of hil.plugin, their output collected line by line."""
import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"

#: Seconds a script may take to open its board and start advertising (a real board may reset).
SCRIPT_READY_TIMEOUT_S = 60.0
#: Seconds for a whole script run (scans of up to 30 s, pairing, the exchanges; a loaded PC).
SCRIPT_RUN_TIMEOUT_S = 120.0


def needs(module):
    """Skip the test unless ``module`` is installed. Found, not imported: adafruit_ble and its
    companions imported in the test process would import Blinka's _bleio there (its bleak thread
    included); the scripts import them under `blebridge run`, on blebridge's."""
    import pytest
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test,circuitpython]')")


class Script:
    """A script under `blebridge run --port PORT`, its output collected line by line."""

    def __init__(self, path, port, env, args=(), stdin=False):
        self.name = Path(path).name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "blebridge.script", "--port", port, str(path), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True)
        self._start_reader()

    def _start_reader(self):
        self._lines = []
        self._ended = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    @property
    def output(self):
        with self._cond:
            return "".join(self._lines)

    def wait_for(self, text, timeout=SCRIPT_READY_TIMEOUT_S):
        with self._cond:
            self._cond.wait_for(lambda: self._ended or any(text in line for line in self._lines), timeout)
            printed = any(text in line for line in self._lines)
        assert printed, f"{self.name} printed no {text!r} within {timeout} s:\n{self.output}"

    def finish(self, timeout=SCRIPT_RUN_TIMEOUT_S):
        try:
            self.proc.wait(timeout)
        finally:
            self.kill()
        self._reader.join(timeout=5)
        return self.proc.returncode, self.output

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def script_env(tmp_path):
    return dict(os.environ, PYTHONPATH=str(ROOT / "host"),
                BLEBRIDGE_SECRETS_DIR=str(tmp_path / "secrets"))


def run_pair(server, client, ports, tmp_path, server_args=(), client_args=(), ready="advertising",
             tell_client_on=None):
    """Start ``server`` (a path) on the first port, wait until it prints ``ready``, run
    ``client`` on the second to its end, then let the server end; both must exit 0.
    ``tell_client_on``: once the server has printed this, a line goes to the client's stdin.
    Returns (server output, client output)."""
    env = script_env(tmp_path)
    s = Script(server, ports[0], env, server_args)
    c = None
    try:
        s.wait_for(ready)
        c = Script(client, ports[1], env, client_args, stdin=tell_client_on is not None)
        if tell_client_on is not None:
            s.wait_for(tell_client_on, SCRIPT_RUN_TIMEOUT_S)
            c.proc.stdin.write("\n")
            c.proc.stdin.flush()
        c_status, c_out = c.finish()
        assert c_status == 0, f"{c.name} exited {c_status}:\n{c_out}\n--- {s.name}:\n{s.output}"
        s_status, s_out = s.finish(SCRIPT_RUN_TIMEOUT_S / 2)
        assert s_status == 0, f"{s.name} exited {s_status}:\n{s_out}\n--- {c.name}:\n{c_out}"
        return s_out, c_out
    finally:
        for script in (s, c):
            if script is not None:
                script.kill()
