"""Fixtures of the CLI tests (helpers: cli_helpers.py)."""
from __future__ import annotations

import os
import pty
from typing import Iterator

import pytest


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A pseudo-terminal nobody answers on: a serial port with no blebridge firmware behind it."""
    master, slave = pty.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)
