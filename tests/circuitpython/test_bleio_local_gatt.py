"""Local services, characteristics and descriptors of _bleio on one simulated board."""
import pytest

from blebridge.circuitpython import _bleio, using
from bleio_helpers import SVC, TX

pytestmark = pytest.mark.boards(1)
C = _bleio.Characteristic
A = _bleio.Attribute


@pytest.fixture
def service(adapter):
    with using(adapter):
        return _bleio.Service(SVC)


def test_service_is_local_and_primary(service):
    assert (service.uuid, service.remote, service.secondary, service.characteristics) == (SVC, False, False, ())


def test_secondary_service_says_so(adapter):
    with using(adapter):
        assert _bleio.Service(SVC, secondary=True).secondary


def test_service_of_non_uuid_raises_type_error(adapter):
    with using(adapter), pytest.raises(TypeError, match="uuid"):
        _bleio.Service(0x180D)


def test_characteristic_is_added_to_its_service(service):
    c = C.add_to_service(service, TX, properties=C.READ)
    assert (service.characteristics, c.service, c.uuid, c.properties) == ((c,), service, TX, C.READ)


def test_initial_value_is_the_value(service):
    assert C.add_to_service(service, TX, properties=C.READ, initial_value=b"abc").value == b"abc"


def test_value_is_a_bytearray(service):
    assert isinstance(C.add_to_service(service, TX, initial_value=b"abc").value, bytearray)


def test_fixed_length_without_initial_value_is_zeros(service):
    assert C.add_to_service(service, TX, max_length=4, fixed_length=True).value == bytes(4)


def test_value_can_be_set(service):
    c = C.add_to_service(service, TX, properties=C.READ)
    c.value = b"new value"
    assert c.value == b"new value"


def test_value_over_max_length_raises_value_error(service):
    c = C.add_to_service(service, TX, max_length=4)
    with pytest.raises(ValueError, match="Value length > max_length"):
        c.value = b"12345"


def test_fixed_length_value_of_other_length_raises_value_error(service):
    c = C.add_to_service(service, TX, max_length=4, fixed_length=True)
    with pytest.raises(ValueError, match="!= required fixed length"):
        c.value = b"123"


def test_value_of_non_buffer_raises_type_error(service):
    c = C.add_to_service(service, TX)
    with pytest.raises(TypeError):
        c.value = 42


def test_values_survive_adding_another_service(adapter, service):
    c = C.add_to_service(service, TX, properties=C.READ)
    c.value = b"kept"
    with using(adapter):
        other = _bleio.Service(_bleio.UUID(0x180F))
    C.add_to_service(other, _bleio.UUID(0x2A19), properties=C.READ, initial_value=b"\x64")
    assert c.value == b"kept"


def test_invalid_properties_raise_value_error(service):
    with pytest.raises(ValueError, match="Invalid properties"):
        C.add_to_service(service, TX, properties=0x40)


def test_invalid_security_mode_raises_value_error(service):
    with pytest.raises(ValueError, match="Invalid security_mode"):
        C.add_to_service(service, TX, read_perm=0x99)


def test_negative_max_length_raises_value_error(service):
    with pytest.raises(ValueError, match="max_length must be >= 0"):
        C.add_to_service(service, TX, max_length=-1)


def test_max_length_over_512_raises_value_error(service):
    with pytest.raises(ValueError, match="max_length must be 0-512 when fixed_length is False"):
        C.add_to_service(service, TX, max_length=513)


def test_fixed_max_length_over_510_raises_value_error(service):
    with pytest.raises(ValueError, match="max_length must be 0-510 when fixed_length is True"):
        C.add_to_service(service, TX, max_length=511, fixed_length=True)


def test_initial_value_over_max_length_raises_value_error(service):
    with pytest.raises(ValueError, match="initial_value length must be <= 2"):
        C.add_to_service(service, TX, max_length=2, initial_value=b"abc")


def test_fixed_initial_value_of_other_length_raises_value_error(service):
    with pytest.raises(ValueError, match="initial_value length must be 4"):
        C.add_to_service(service, TX, max_length=4, fixed_length=True, initial_value=b"abc")


def test_characteristic_on_non_service_raises_type_error():
    with pytest.raises(TypeError, match="service"):
        C.add_to_service(object(), TX)


def test_characteristic_of_non_uuid_raises_type_error(service):
    with pytest.raises(TypeError, match="uuid"):
        C.add_to_service(service, 0x2A37)


def test_user_description_of_non_str_raises_type_error(service):
    with pytest.raises(TypeError, match="to str"):
        C.add_to_service(service, TX, user_description=42)


def test_str_value_is_its_utf8_bytes(service):
    c = C.add_to_service(service, TX)
    c.value = "héllo"
    assert c.value == "héllo".encode()


def test_user_description_does_not_show_as_a_descriptor(service):
    assert C.add_to_service(service, TX, user_description="temperature").descriptors == ()


def test_set_cccd_on_local_characteristic_raises_role_error(service):
    c = C.add_to_service(service, TX, properties=C.NOTIFY)
    with pytest.raises(_bleio.RoleError, match="local Characteristic"):
        c.set_cccd(notify=True)


def test_set_cccd_without_notify_or_indicate_raises_bluetooth_error(service):
    c = C.add_to_service(service, TX, properties=C.READ)
    with pytest.raises(_bleio.BluetoothError, match="No CCCD"):
        c.set_cccd(notify=True)


def test_characteristic_cannot_be_constructed():
    with pytest.raises(TypeError):
        C()


def test_descriptor_is_added_to_its_characteristic(service):
    c = C.add_to_service(service, TX)
    d = _bleio.Descriptor.add_to_characteristic(c, _bleio.UUID(0x2904), initial_value=b"\x01")
    assert (c.descriptors, d.characteristic, d.uuid, d.value) == ((d,), c, _bleio.UUID(0x2904), b"\x01")


def test_descriptor_value_can_be_set(service):
    d = _bleio.Descriptor.add_to_characteristic(C.add_to_service(service, TX), _bleio.UUID(0x2904))
    d.value = b"\x02\x03"
    assert d.value == b"\x02\x03"


def test_descriptor_on_non_characteristic_raises_type_error():
    with pytest.raises(TypeError, match="characteristic"):
        _bleio.Descriptor.add_to_characteristic(object(), _bleio.UUID(0x2904))


def test_descriptor_initial_value_over_max_length_raises_value_error(service):
    with pytest.raises(ValueError, match="initial_value length must be <= 1"):
        _bleio.Descriptor.add_to_characteristic(C.add_to_service(service, TX), _bleio.UUID(0x2904),
                                                max_length=1, initial_value=b"ab")


def test_descriptor_invalid_security_mode_raises_value_error(service):
    with pytest.raises(ValueError, match="Invalid security_mode"):
        _bleio.Descriptor.add_to_characteristic(C.add_to_service(service, TX), _bleio.UUID(0x2904),
                                                write_perm=7)


def test_characteristic_buffer_buffer_size_zero_raises_value_error(service):
    with pytest.raises(ValueError, match="buffer_size must be >= 1"):
        _bleio.CharacteristicBuffer(C.add_to_service(service, TX), buffer_size=0)


def test_characteristic_buffer_negative_timeout_raises_value_error(service):
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        _bleio.CharacteristicBuffer(C.add_to_service(service, TX), timeout=-1)


def test_characteristic_buffer_of_non_characteristic_raises_type_error():
    with pytest.raises(TypeError, match="characteristic"):
        _bleio.CharacteristicBuffer(object())


def test_local_characteristic_buffer_read_times_out_empty(service):
    buf = _bleio.CharacteristicBuffer(C.add_to_service(service, TX, properties=C.WRITE), timeout=0.1)
    assert buf.read(1) == b""


def test_characteristic_buffer_write_is_not_implemented(service):
    buf = _bleio.CharacteristicBuffer(C.add_to_service(service, TX, properties=C.WRITE))
    with pytest.raises(NotImplementedError):
        buf.write(b"x")


def test_deinited_characteristic_buffer_raises_value_error(service):
    buf = _bleio.CharacteristicBuffer(C.add_to_service(service, TX, properties=C.WRITE))
    buf.deinit()
    with pytest.raises(ValueError, match="deinitialized"):
        buf.in_waiting


def test_packet_buffer_needs_buffer_size(service):
    with pytest.raises(TypeError):
        _bleio.PacketBuffer(C.add_to_service(service, TX, properties=C.WRITE))


def test_packet_buffer_max_packet_size_zero_raises_value_error(service):
    with pytest.raises(ValueError, match="max_packet_size must be >= 1"):
        _bleio.PacketBuffer(C.add_to_service(service, TX, properties=C.WRITE), buffer_size=2, max_packet_size=0)


def test_packet_buffer_readinto_without_packets_returns_0(service):
    pb = _bleio.PacketBuffer(C.add_to_service(service, TX, properties=C.WRITE), buffer_size=2)
    assert pb.readinto(bytearray(20)) == 0


def test_packet_buffer_without_outgoing_property_refuses_writes(service):
    pb = _bleio.PacketBuffer(C.add_to_service(service, TX, properties=C.WRITE), buffer_size=2)
    with pytest.raises(_bleio.BluetoothError, match="Writes not supported"):
        pb.write(b"x")


def test_local_incoming_packet_length_is_max_length(service):
    pb = _bleio.PacketBuffer(C.add_to_service(service, TX, properties=C.WRITE, max_length=50), buffer_size=2)
    assert (pb.incoming_packet_length, pb.packet_size) == (50, 50)


def test_notify_packet_length_without_connection_raises_value_error(service):
    pb = _bleio.PacketBuffer(C.add_to_service(service, TX, properties=C.NOTIFY), buffer_size=2)
    with pytest.raises(ValueError, match="No connection"):
        pb.outgoing_packet_length


def test_packet_buffer_write_without_connection_returns_0(service):
    pb = _bleio.PacketBuffer(C.add_to_service(service, TX, properties=C.NOTIFY), buffer_size=2)
    assert pb.write(b"x") == 0


def test_fixed_length_zero_characteristic_is_empty(service):
    c = C.add_to_service(service, TX, properties=C.READ, max_length=0, fixed_length=True)
    c.value = b""
    assert c.value == b""
