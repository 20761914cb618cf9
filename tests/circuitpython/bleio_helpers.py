"""Helpers of the _bleio tests: a peripheral's services, a connection between two adapters."""
from blebridge.circuitpython import _bleio, using

SVC = _bleio.UUID("7e1a0010-5c4b-4d55-9a1e-000000000001")
TX = _bleio.UUID("7e1a0010-5c4b-4d55-9a1e-000000000002")   # peripheral -> central (notify)
RX = _bleio.UUID("7e1a0010-5c4b-4d55-9a1e-000000000003")   # central -> peripheral (write)
SECURE = _bleio.UUID(0x2A3D)
C = _bleio.Characteristic
A = _bleio.Attribute
#: Flags AD structure of a general-discoverable LE-only peripheral.
FLAGS = bytes([2, 0x01, 0x06])
#: Seconds the tests give a connection to be made, or data to arrive (the machine is loaded).
TIMEOUT = 20
#: Advertising / scan interval, s: short, so the simulated air delivers reports at once.
FAST = 0.02


class Peripheral:
    """The test service on ``adapter``: TX (read, notify, indicate), RX (write, write without
    response), SECURE (read/write needing an encrypted link)."""

    def __init__(self, adapter, *, max_length=100):
        with using(adapter):
            self.service = _bleio.Service(SVC)
        self.tx = C.add_to_service(self.service, TX, properties=C.READ | C.NOTIFY | C.INDICATE,
                                   max_length=max_length, initial_value=b"tx")
        self.rx = C.add_to_service(self.service, RX, properties=C.WRITE | C.WRITE_NO_RESPONSE,
                                   max_length=max_length)
        self.secure = C.add_to_service(self.service, SECURE, properties=C.READ | C.WRITE,
                                       read_perm=A.ENCRYPT_NO_MITM, write_perm=A.ENCRYPT_NO_MITM,
                                       initial_value=b"secret")


def connect(peripheral, central):
    """(peripheral's Connection, central's Connection): advertise and connect by address."""
    peripheral.start_advertising(FLAGS, interval=FAST)
    cconn = central.connect(peripheral.address, timeout=TIMEOUT)
    pconn = wait_for(lambda: peripheral.connections and peripheral.connections[0])
    return pconn, cconn


def remote(cconn, uuid=TX):
    """The central's remote characteristic ``uuid`` of the test service."""
    (service,) = cconn.discover_remote_services([SVC])
    return next(c for c in service.characteristics if c.uuid == uuid)


def wait_for(predicate, timeout=TIMEOUT):
    import time
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.01)
