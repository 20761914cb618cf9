"""Helpers of the CLI tests: the `blebridge` command run as a user runs it, on the suite's air."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HOST = Path(__file__).resolve().parents[2] / "host"
#: Seconds a CLI command may take before the test fails (generous: the machine is loaded).
COMMAND_TIMEOUT_S = 120.0


def cli_env(**extra: str) -> dict[str, str]:
    """Environment of a `blebridge` child: this checkout's package, the suite's air, no debug."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HOST)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("BLEBRIDGE_DEBUG", None)
    env.pop("BLEBRIDGE_PORT", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def blebridge(*args: str, input: str | None = None, env: dict[str, str] | None = None,
              timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run `blebridge ARGS...` to its end; its output as text."""
    return subprocess.run([sys.executable, "-m", "blebridge", *args], input=input,
                          capture_output=True, text=True, env=env or cli_env(), timeout=timeout)


def assert_one_line_and_hint(r: subprocess.CompletedProcess, *fragments: str) -> None:
    """Status 2, and stderr is the CLI's error line and its hint line, nothing else."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("blebridge: error: ") and lines[1].startswith("hint: "), r.stderr
    for fragment in fragments:
        assert fragment in r.stderr, r.stderr
