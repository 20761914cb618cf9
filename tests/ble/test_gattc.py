"""blebridge.ble.gattc: GATT client procedures as futures, from the board's events."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_rpc_board import FakeRpcBoard  # noqa: E402

from blebridge.ble import session as ble_session  # noqa: E402
from blebridge.ble.gattc import (ConnectionClosed, GattClient, GattStatusError,  # noqa: E402
                                 RemoteCharacteristic, RemoteDescriptor, RemoteService)
from blebridge.errors import BoardError  # noqa: E402

U16 = (0x180F).to_bytes(2, "little")
A = (0x2A19).to_bytes(2, "little")
B = (0x2A1A).to_bytes(2, "little")
PEER = bytes(6)


@pytest.fixture
def board():
    return FakeRpcBoard()


@pytest.fixture
def client(board):
    session = ble_session.session_for(board)
    c = GattClient(session)
    yield c
    c.close()
    session.close()


def test_service_discovery_resolves_with_every_service_found(board, client):
    fut = client.discover_services(1)
    board.event("GATTC_SERVICE_RESULT", 1, 1, 5, U16)
    board.event("GATTC_SERVICE_RESULT", 1, 6, 9, A)
    assert not fut.done()
    board.event("GATTC_SERVICE_DONE", 1, 0)
    assert fut.result(0) == [RemoteService(1, 5, U16), RemoteService(6, 9, A)]


def test_characteristic_ends_before_the_next_one_and_the_last_at_the_range_end(board, client):
    fut = client.discover_characteristics(1, 1, 20)
    board.event("GATTC_CHARACTERISTIC_RESULT", 1, 2, 3, 0x12, A)
    board.event("GATTC_CHARACTERISTIC_RESULT", 1, 6, 7, 0x08, B)
    board.event("GATTC_CHARACTERISTIC_DONE", 1, 0)
    assert fut.result(0) == [RemoteCharacteristic(2, 3, 5, 0x12, A), RemoteCharacteristic(6, 7, 20, 0x08, B)]


def test_characteristic_filter_keeps_the_end_handle_of_a_filtered_neighbour(board, client):
    fut = client.discover_characteristics(1, 1, 20, A)
    board.event("GATTC_CHARACTERISTIC_RESULT", 1, 2, 3, 0x12, A)
    board.event("GATTC_CHARACTERISTIC_RESULT", 1, 6, 7, 0x08, B)
    board.event("GATTC_CHARACTERISTIC_DONE", 1, 0)
    assert fut.result(0) == [RemoteCharacteristic(2, 3, 5, 0x12, A)]
    assert ("gattc_discover_characteristics", 1, 1, 20) == board.calls[-1][:4]


def test_a_second_discovery_on_a_connection_starts_when_the_first_is_done(board, client):
    first = client.discover_services(1)
    second = client.discover_descriptors(1, 4, 5)
    assert board.methods() == ["gattc_discover_services"]
    board.event("GATTC_SERVICE_DONE", 1, 0)
    assert first.result(0) == [] and board.methods()[-1] == "gattc_discover_descriptors"
    board.event("GATTC_DESCRIPTOR_RESULT", 1, 4, (0x2902).to_bytes(2, "little"))
    board.event("GATTC_DESCRIPTOR_DONE", 1, 0)
    assert second.result(0) == [RemoteDescriptor(4, (0x2902).to_bytes(2, "little"))]


def test_discovery_done_with_a_status_raises_gatt_status_error(board, client):
    fut = client.discover_services(1)
    board.event("GATTC_SERVICE_DONE", 1, 0x0A)
    with pytest.raises(GattStatusError) as info:
        fut.result(0)
    assert info.value.status == 0x0A


def test_read_joins_its_results_until_done(board, client):
    fut = client.read(1, 3)
    board.event("GATTC_READ_RESULT", 1, 3, b"ab")
    board.event("GATTC_READ_RESULT", 1, 3, b"cd")
    board.event("GATTC_READ_DONE", 1, 3, 0)
    assert fut.result(0) == b"abcd"


def test_reads_of_one_handle_are_answered_in_order(board, client):
    first, second = client.read(1, 3), client.read(1, 3)
    board.event("GATTC_READ_RESULT", 1, 3, b"1")
    board.event("GATTC_READ_DONE", 1, 3, 0)
    board.event("GATTC_READ_RESULT", 1, 3, b"2")
    board.event("GATTC_READ_DONE", 1, 3, 0)
    assert (first.result(0), second.result(0)) == (b"1", b"2")


def test_read_refused_by_the_board_raises_its_board_error(board, client):
    board.fail["gattc_read"] = 22
    with pytest.raises(BoardError):
        client.read(1, 3).result(0)


def test_write_with_response_resolves_on_its_done_event(board, client):
    fut = client.write(1, 3, b"x", True)
    assert not fut.done()
    board.event("GATTC_WRITE_DONE", 1, 3, 0)
    assert fut.result(0) is None


def test_write_without_response_resolves_when_the_board_took_it(board, client):
    assert client.write(1, 3, b"x", False).result(0) is None


def test_exchange_mtu_resolves_with_the_agreed_mtu(board, client):
    fut = client.exchange_mtu(1)
    board.event("MTU_EXCHANGED", 1, 185)
    assert fut.result(0) == 185


def test_disconnection_fails_every_procedure_of_that_connection(board, client):
    read, disc, other = client.read(1, 3), client.discover_services(1), client.read(2, 3)
    board.event("PERIPHERAL_DISCONNECT", 1, 0, PEER, 0x13)
    for fut in (read, disc):
        with pytest.raises(ConnectionClosed):
            fut.result(0)
    assert not other.done()
