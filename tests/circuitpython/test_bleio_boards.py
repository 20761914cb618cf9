"""Several boards in one process: which adapter owns what."""
import pytest

from blebridge.circuitpython import _bleio, adapter_for, using
from blebridge.circuitpython._bleio import adapters as adapter_module
from bleio_helpers import SVC

pytestmark = pytest.mark.boards(2)


def test_adapter_for_a_board_is_one_object(pair, boards):
    assert adapter_for(boards[0]) is pair[0]


def test_service_made_in_using_belongs_to_that_adapter(pair):
    p, c = pair
    with using(c):
        s = _bleio.Service(SVC)
    assert s._adapter is c


def test_using_nests_and_restores(pair):
    p, c = pair
    with using(p):
        with using(c):
            inner = _bleio.Service(SVC)
        outer = _bleio.Service(SVC)
    assert (inner._adapter, outer._adapter) == (c, p)


def test_using_a_non_adapter_raises_type_error():
    with pytest.raises(TypeError, match="adapter"):
        with using("sim:x"):
            pass


def test_set_adapter_makes_it_the_default(pair, monkeypatch):
    monkeypatch.setattr(adapter_module, "_default", None)
    _bleio.set_adapter(pair[1])
    assert _bleio.adapter is pair[1]


def test_adapters_have_their_boards_addresses(pair):
    p, c = pair
    assert p.address != c.address
