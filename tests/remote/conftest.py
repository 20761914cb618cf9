"""Fixtures for remote boards: a simulated board's pseudo-terminal behind a network server.

``remote`` is parametrized over every kind in servers.KINDS (rfc2217:// through ser2net and
through pyserial's RFC 2217 server, socket:// through ser2net and through socat); a kind whose
program is not installed is skipped with the reason (.ci/run installs them for CI).
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

HERE = Path(__file__).resolve().parent
HOST = HERE.parents[1] / "host"
for p in (str(HOST), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from blebridge.sim import launcher  # noqa: E402

import servers  # noqa: E402


@pytest.fixture(scope="module")
def air(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An air process of this test module only; its socket path."""
    pytest.importorskip("bumble")
    try:
        launcher.firmware_path()
    except FileNotFoundError as exc:
        pytest.skip(f"sim firmware not built: {exc}")
    sock = str(tmp_path_factory.mktemp("air") / "air.sock")
    launcher.ensure_air(sock)
    yield sock
    launcher.stop_all(sock)


def _board_name(request: pytest.FixtureRequest, suffix: str = "") -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[-40:].strip("-") + suffix


@pytest.fixture
def sim(air: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A simulated board (launcher.SimBoard) of this test; its ``pty`` is what servers serve."""
    board = launcher.start_board(_board_name(request), air=air)
    yield board
    board.stop()


@dataclass
class Remote:
    kind: str
    url: str
    server: servers.Server
    sim: Any           # the simulated board behind the server (launcher.SimBoard)
    air: str


@pytest.fixture(params=servers.KINDS)
def remote(request: pytest.FixtureRequest, sim: Any, air: str) -> Iterator[Remote]:
    """The test's simulated board behind a server of each kind; ``url`` opens it."""
    why = servers.missing_tool(request.param)
    if why:
        pytest.skip(why)
    server = servers.start(request.param, sim.pty)
    try:
        yield Remote(request.param, server.url, server, sim, air)
    finally:
        server.stop()


@pytest.fixture
def local_board_name(request: pytest.FixtureRequest) -> str:
    """A name for a second, local simulated board of the test (on the same air)."""
    return _board_name(request, "-local")
