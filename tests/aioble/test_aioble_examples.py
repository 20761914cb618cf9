"""examples/aioble run as pairs (one side under `blebridge run`, the other as plain Python),
and `import aioble` under `blebridge run`."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "aioble"

pytestmark = pytest.mark.hil

#: Seconds a script may take to open its board and start advertising (a real board may reset).
SCRIPT_READY_TIMEOUT_S = 30.0
#: Seconds for a whole example run.
SCRIPT_RUN_TIMEOUT_S = 60.0


class Script:
    """An example script on one board, its output collected line by line."""

    def __init__(self, name, port, env, under_run):
        path = str(EXAMPLES / f"{name}.py")
        argv = ([sys.executable, "-m", "blebridge.script", "--port", port, path] if under_run
                else [sys.executable, path, "--port", port])
        self.name = name
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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

    def wait_for(self, text, timeout):
        with self._cond:
            self._cond.wait_for(lambda: self._ended or any(text in line for line in self._lines), timeout)
            printed = any(text in line for line in self._lines)
        assert printed, f"{self.name} printed no {text!r} within {timeout} s:\n{self.output}"

    def finish(self, timeout):
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


def _env(tmp_path):
    return dict(os.environ, PYTHONPATH=str(ROOT / "host"), BLEBRIDGE_SECRETS_DIR=str(tmp_path / "secrets"))


def _run_pair(server, client, ports, tmp_path, server_under_run, client_under_run):
    env = _env(tmp_path)
    s = Script(server, ports[0], env, server_under_run)
    c = None
    try:
        s.wait_for("advertising", SCRIPT_READY_TIMEOUT_S)
        c = Script(client, ports[1], env, client_under_run)
        c_status, c_out = c.finish(SCRIPT_RUN_TIMEOUT_S)
        assert c_status == 0, f"{client} exited {c_status}:\n{c_out}\n--- {server}:\n{s.output}"
        s_status, s_out = s.finish(SCRIPT_RUN_TIMEOUT_S / 2)
        assert s_status == 0, f"{server} exited {s_status}:\n{s_out}\n--- {client}:\n{c_out}"
        return s_out, c_out
    finally:
        for script in (s, c):
            if script is not None:
                script.kill()


def test_sensor_example_notifies_the_central(board_urls, tmp_path):
    server, client = _run_pair("sensor_peripheral", "sensor_central", board_urls(2), tmp_path,
                               server_under_run=True, client_under_run=False)
    assert client.count("notified temperature") == 5 and "disconnected" in server


def test_l2cap_example_transfers_all_bytes(board_urls, tmp_path):
    server, client = _run_pair("l2cap_receiver", "l2cap_sender", board_urls(2), tmp_path,
                               server_under_run=False, client_under_run=True)
    assert "received 65536 bytes, 0 wrong" in server and "sent 65536 bytes" in client


def test_import_aioble_under_blebridge_run_is_blebridge_aioble_on_the_script_board(board_urls, tmp_path):
    code = ("import aioble, aioble.core, bluetooth, blebridge.aioble\n"
            "print(aioble is blebridge.aioble, aioble.core is blebridge.aioble.core)\n"
            "print(aioble.config('mac') == bluetooth.BLE().config('mac'))\n"
            "aioble.stop()\n")
    (port,) = board_urls(1)
    r = subprocess.run([sys.executable, "-m", "blebridge.script", "--port", port, "-c", code],
                       env=_env(tmp_path), capture_output=True, text=True, timeout=SCRIPT_RUN_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "True True\nTrue\n"


def test_script_that_times_out_advertising_under_blebridge_run_sees_timeout_error(board_urls, tmp_path):
    code = ("import asyncio, aioble\n"
            "async def main():\n"
            "    try:\n"
            "        await aioble.advertise(20_000, name='x', timeout_ms=100)\n"
            "    except asyncio.TimeoutError:\n"
            "        print('timeout')\n"
            "asyncio.run(main())\n")
    (port,) = board_urls(1)
    r = subprocess.run([sys.executable, "-m", "blebridge.script", "--port", port, "-c", code],
                       env=_env(tmp_path), capture_output=True, text=True, timeout=SCRIPT_RUN_TIMEOUT_S)
    assert (r.returncode, r.stdout) == (0, "timeout\n"), r.stderr


