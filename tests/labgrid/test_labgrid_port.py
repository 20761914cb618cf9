"""The labgrid:PLACE port spec against a coordinator and exporter on localhost (conftest.lab)."""
from __future__ import annotations

import pytest

from blebridge import PortOpenError, open_board
from blebridge.transport.labgrid import parse_labgrid_spec

from lab import acquire_as, place_holder


def url(lab, place: str) -> str:
    return f"labgrid:{place}?coordinator={lab.address}"


def test_board_of_a_free_place_answers_the_handshake(free_lab):
    with open_board(url(free_lab, free_lab.places[0])) as board:
        assert board.info.port == "sim"


def test_board_of_a_place_is_read_through_blebridges_rfc2217_client(free_lab):
    from blebridge.transport import open_transport
    from blebridge.transport.rfc2217 import RFC2217Serial
    transport = open_transport(url(free_lab, free_lab.places[0]))
    try:
        assert isinstance(transport.serial, RFC2217Serial)
    finally:
        transport.close()


def test_free_place_is_held_while_its_board_is_open(free_lab):
    place = free_lab.places[0]
    with open_board(url(free_lab, place)):
        assert place_holder(free_lab, place) is not None


def test_place_acquired_by_the_port_is_released_on_close(free_lab):
    place = free_lab.places[0]
    with open_board(url(free_lab, place)):
        pass
    assert place_holder(free_lab, place) is None


def test_place_this_user_holds_stays_held_after_close(free_lab):
    place = free_lab.places[1]
    acquire_as(free_lab, place)
    with open_board(url(free_lab, place)) as board:
        assert board.info.port == "sim"
    assert place_holder(free_lab, place) is not None


def test_place_held_by_another_user_is_refused_naming_the_holder(free_lab):
    place = free_lab.places[2]
    acquire_as(free_lab, place, "someone-else")
    with pytest.raises(PortOpenError, match="someone-else"):
        open_board(url(free_lab, place))


def test_unknown_place_is_refused_listing_the_places(free_lab):
    with pytest.raises(PortOpenError, match=f"no place named nowhere.*{free_lab.places[0]}"):
        open_board(url(free_lab, "nowhere"))


def test_unknown_resource_name_is_refused_listing_the_names(free_lab):
    place = free_lab.places[0]
    with pytest.raises(PortOpenError, match="no serial port named nope.*RawSerialPort"):
        open_board(f"labgrid:{place}/nope?coordinator={free_lab.address}")


def test_refused_open_leaves_the_place_free(free_lab):
    place = free_lab.places[0]
    with pytest.raises(PortOpenError):
        open_board(f"labgrid:{place}/nope?coordinator={free_lab.address}")
    assert place_holder(free_lab, place) is None


def test_coordinator_from_lg_coordinator(free_lab, monkeypatch):
    monkeypatch.setenv("LG_COORDINATOR", free_lab.address)
    with open_board(f"labgrid:{free_lab.places[0]}") as board:
        assert board.info.port == "sim"


def test_unreachable_coordinator_is_a_port_open_error():
    pytest.importorskip("labgrid")
    import socket
    with socket.socket() as s:      # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(PortOpenError, match="cannot reach the labgrid coordinator"):
            open_board(f"labgrid:p?coordinator=127.0.0.1:{port}")


@pytest.mark.parametrize("spec", ["labgrid:", "labgrid:a b", "labgrid:p?coord=x", "labgrid:p/", "labgrid:p?coordinator="])
def test_malformed_spec_is_a_port_open_error(spec):
    with pytest.raises(PortOpenError, match="labgrid"):
        open_board(spec)


def test_spec_parts():
    assert parse_labgrid_spec("labgrid:rack-1/feather?coordinator=lab:20408") == ("rack-1", "feather", "lab:20408")
    assert parse_labgrid_spec("labgrid:rack-1") == ("rack-1", None, None)


@pytest.fixture
def pair_place(free_lab):
    """A place holding two boards (the lab's first two), named a and b."""
    from blebridge.labgrid.coordinator import Coordinator
    place = "bb-pair"
    if "bb-pair" not in free_lab.client("places").stdout:
        free_lab.client("-p", place, "create")
        free_lab.client("-p", place, "add-named-match", f"{free_lab.exporter}/bb-0/NetworkSerialPort", "a")
        free_lab.client("-p", place, "add-named-match", f"{free_lab.exporter}/bb-1/NetworkSerialPort", "b")
    yield place
    with Coordinator(free_lab.address) as coord:
        if coord.acquired_by(place):
            coord.release(place)


def test_place_of_several_boards_needs_a_name(free_lab, pair_place):
    with pytest.raises(PortOpenError, match=f"2 serial ports \\(a, b\\).*labgrid:{pair_place}/NAME"):
        open_board(url(free_lab, pair_place))


def test_name_picks_one_board_of_a_place(free_lab, pair_place):
    with open_board(url(free_lab, free_lab.places[1])) as board:
        want = board.info.addr
    with open_board(f"labgrid:{pair_place}/b?coordinator={free_lab.address}") as board:
        assert board.info.addr == want
