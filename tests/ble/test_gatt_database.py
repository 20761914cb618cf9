"""The API-neutral local GATT database (blebridge.ble.gatt): wire form, handle map by name,
services added one at a time, re-registration keeping values."""
from __future__ import annotations

import pytest

from blebridge.ble import gatt
from blebridge.errors import ProtocolError

READ, NOTIFY = gatt.FLAG["READ"], gatt.FLAG["NOTIFY"]


class FakeDatabaseBoard:
    """Answers gatts_register_services as a board does: handles given out in order from 1
    (service, declaration, value, CCCD for notify/indicate, descriptors), values kept per handle."""

    def __init__(self) -> None:
        self.sent: list[list] = []
        self.values: dict[int, bytes] = {}

    def register(self, wire: list) -> list:
        self.sent.append(wire)
        self.values = {}
        out, h = [], 1
        for _uuid, chars in wire:
            service_handle, h = h, h + 1
            rows = []
            for _cu, flags, _max_len, value, dscs in chars:
                decl, value_handle, h = h, h + 1, h + 2
                self.values[value_handle] = value
                cccd = 0
                if flags & (NOTIFY | gatt.FLAG["INDICATE"]):
                    cccd, h = h, h + 1
                dsc_handles = []
                for _du, _df, _dl, dvalue in dscs:
                    self.values[h] = dvalue
                    dsc_handles.append(h)
                    h += 1
                rows.append([decl, value_handle, cccd, dsc_handles])
            out.append([service_handle, rows])
        return out

    def read(self, handle: int) -> bytes:
        return self.values[handle]


def battery() -> gatt.Service:
    return gatt.Service(b"\x0f\x18", [gatt.Characteristic(
        b"\x19\x2a", READ | NOTIFY, 20, b"\x64",
        descriptors=[gatt.Descriptor(b"\x01\x29", READ, 20, b"level")])])


def device_info() -> gatt.Service:
    return gatt.Service(b"\x0a\x18", [gatt.Characteristic(b"\x29\x2a", READ, 20, b"acme")])


def test_wire_form_is_the_schemas_service_shape():
    assert gatt.wire_form([battery()]) == [
        [b"\x0f\x18", [[b"\x19\x2a", READ | NOTIFY, 20, b"\x64", [[b"\x01\x29", READ, 20, b"level"]]]]]]


def test_register_gives_each_object_its_handles():
    board = FakeDatabaseBoard()
    service = battery()
    gatt.GattDatabase().register([service], board.register)
    char = service.characteristics[0]
    assert (service.handle, char.decl_handle, char.handle, char.cccd_handle,
            char.descriptors[0].handle) == (1, 2, 3, 4, 5)


def test_attribute_looks_up_a_characteristic_by_its_value_handle():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    service = battery()
    db.register([service], board.register)
    assert db.attribute(3) is service.characteristics[0]


def test_attribute_looks_up_a_descriptor_by_its_handle():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    service = battery()
    db.register([service], board.register)
    assert db.attribute(5) is service.characteristics[0].descriptors[0]


def test_attribute_of_a_declaration_handle_is_none():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    db.register([battery()], board.register)
    assert db.attribute(2) is None


def test_register_replaces_every_service():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    db.register([battery()], board.register)
    db.register([device_info()], board.register)
    assert [s.uuid for s in db.services] == [b"\x0a\x18"]


def test_add_service_sends_the_services_registered_before_and_the_new_one():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    db.add_service(battery(), board.register, board.read)
    db.add_service(device_info(), board.register, board.read)
    assert [s[0] for s in board.sent[-1]] == [b"\x0f\x18", b"\x0a\x18"]


def test_add_service_keeps_the_values_the_board_holds():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    first = db.add_service(battery(), board.register, board.read)
    board.values[first.characteristics[0].handle] = b"\x2a"   # a peer or the script wrote it
    db.add_service(device_info(), board.register, board.read)
    assert board.values[first.characteristics[0].handle] == b"\x2a"


def test_add_service_keeps_descriptor_values():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    first = db.add_service(battery(), board.register, board.read)
    board.values[first.characteristics[0].descriptors[0].handle] = b"changed"
    db.add_service(device_info(), board.register, board.read)
    assert board.values[first.characteristics[0].descriptors[0].handle] == b"changed"


def test_a_refused_register_leaves_the_database_as_it_was():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    db.register([battery()], board.register)

    def refuse(_wire: list) -> list:
        raise OSError("refused")

    with pytest.raises(OSError):
        db.register([device_info()], refuse)
    assert db.attribute(3) is db.services[0].characteristics[0]


def test_an_answer_with_too_few_services_is_a_protocol_error():
    db = gatt.GattDatabase()
    with pytest.raises(ProtocolError):
        db.register([battery(), device_info()], lambda wire: FakeDatabaseBoard().register(wire[:1]))


def test_an_answer_with_too_few_descriptor_handles_is_a_protocol_error():
    db = gatt.GattDatabase()
    with pytest.raises(ProtocolError):
        db.register([battery()], lambda wire: [[1, [[2, 3, 4, []]]]])


def test_clear_forgets_every_attribute():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    db.register([battery()], board.register)
    db.clear()
    assert not db.has_attributes()


def test_characteristic_properties_are_the_low_byte_of_its_flags():
    char = gatt.Characteristic(b"\x19\x2a", READ | gatt.FLAG["READ_ENCRYPTED"], 20)
    assert char.properties == READ


def test_has_names_a_permission_flag():
    char = gatt.Characteristic(b"\x19\x2a", READ | gatt.FLAG["WRITE_AUTHENTICATED"], 20)
    assert char.has("WRITE_AUTHENTICATED") and not char.has("READ_ENCRYPTED")


def test_replace_registers_characteristics_added_to_a_registered_service():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    service = db.add_service(battery(), board.register, board.read)
    added = gatt.Characteristic(b"\x1a\x2a", READ, 20, b"new")
    service.characteristics.append(added)
    db.replace(db.services, board.register, board.read)
    assert added.handle and db.attribute(added.handle) is added


def test_replace_keeps_the_values_the_board_holds():
    board = FakeDatabaseBoard()
    db = gatt.GattDatabase()
    first = db.add_service(battery(), board.register, board.read)
    board.values[first.characteristics[0].handle] = b"\x2a"
    db.replace([first, device_info()], board.register, board.read)
    assert board.values[first.characteristics[0].handle] == b"\x2a"


def test_wire_form_of_a_secondary_service_says_so():
    assert gatt.wire_form([gatt.Service(b"\x11\x18", secondary=True)]) == [[b"\x11\x18", [], True]]


def test_wire_form_of_a_primary_service_has_two_elements():
    assert gatt.wire_form([gatt.Service(b"\x11\x18")]) == [[b"\x11\x18", []]]
