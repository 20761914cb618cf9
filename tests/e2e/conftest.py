"""Fixtures for end-to-end tests against real simulated boards (build/sim/bb_sim on a private air).

`RawLink` speaks the wire protocol directly on a board's pseudo-terminal, so a test can send
what the RPC client refuses to (wrong argument counts, bad CBOR, broken frames) and read the
board's exact answer. Boards are started detached so that a raw link, the RPC client and the
`blebridge` CLI can each open the same board in turn.

Skipped when the sim firmware is not built (`make firmware`) or Bumble is missing.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = REPO / "host"
if str(HOST) not in sys.path:
    sys.path.insert(0, str(HOST))


from blebridge.sim import launcher  # noqa: E402

#: Seconds a raw request may take before the test fails (the board answers in milliseconds).
ANSWER_TIMEOUT_S = 5.0
#: Seconds one `blebridge info` run may take (interpreter start, handshake, diagnostics).
CLI_TIMEOUT_S = 60.0


from e2e_link import RawLink  # noqa: E402


@pytest.fixture(scope="module")
def air(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An air process of this test module only; its socket path."""
    pytest.importorskip("bumble")
    try:
        launcher.firmware_path(launcher.default_stack())
    except FileNotFoundError as exc:
        pytest.skip(f"sim firmware not built: {exc}")
    sock = str(tmp_path_factory.mktemp("air") / "air.sock")
    launcher.ensure_air(sock)
    yield sock
    launcher.stop_all(sock)


@pytest.fixture
def start_board(air: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """start_board(suffix="") -> a detached sim board named after the test, stopped at the end."""
    started: list[Any] = []
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[-40:].strip("-")

    def start(suffix: str = "") -> Any:
        board = launcher.start_board(f"{base}{suffix}", air=air, detached=True)
        started.append(board)
        return board

    yield start
    for board in started:
        board.stop()


@pytest.fixture
def sim(start_board: Callable[..., Any]) -> Any:
    """One detached sim board for this test."""
    return start_board()


@pytest.fixture
def raw(sim: Any) -> Iterator[RawLink]:
    """A raw link to this test's board; close it (link.close()) before another opener uses it."""
    link = RawLink(sim.pty)
    yield link
    link.close()


@pytest.fixture
def spec(sim: Any, air: str) -> str:
    """The port spec of this test's board, for open_board and the CLI."""
    return f"sim:{sim.name}?air={air}"
