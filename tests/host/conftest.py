"""Fixtures for the host package tests: a fake board on a pseudo-terminal and an open Board."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = REPO / "host"
if str(HOST) not in sys.path:      # run from a checkout without installing the package
    sys.path.insert(0, str(HOST))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from blebridge import open_board  # noqa: E402
from serial_fakeboard import FakeBoard  # noqa: E402


@pytest.fixture
def fake():
    fb = FakeBoard()
    yield fb
    fb.close()


@pytest.fixture
def board(fake):
    b = open_board(fake.path, timeout=5)
    yield b
    b.close()


@pytest.fixture
def cli_env():
    """Environment for running `python -m blebridge` from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HOST) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("BLEBRIDGE_PORT", None)
    env.pop("BLEBRIDGE_DEBUG", None)
    return env
