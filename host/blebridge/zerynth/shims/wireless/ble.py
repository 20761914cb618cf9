"""Zerynth's ``wireless.ble``, served by blebridge (blebridge.zerynth.ble): the functions go
to the board a driver's ``init()`` bound (``bledrv.init()``)."""
from blebridge.zerynth import ble as _z
from blebridge.zerynth.ble import CONSTANT_NAMES as _CONSTANTS, Characteristic, Service, btos

# The module's constants (READ, EVT_CONNECTED, ...), and nothing else of blebridge's.
globals().update({_name: getattr(_z, _name) for _name in _CONSTANTS})

__all__ = [*_CONSTANTS, "Service", "Characteristic", "btos", "gap", "security", "bonded",
           "remove_bonded", "confirm_passkey", "add_service", "add_callback", "advertising",
           "start_advertising", "stop_advertising", "scanning", "start_scanning", "stop_scanning",
           "start"]


def gap(name, appearance=0, security=(SECURITY_MODE_1, SECURITY_LEVEL_1), connection=(400, 650, 0, 4000)):
    _z.default().gap(name, appearance, security, connection)


def security(capabilities=CAP_NONE, bonding=AUTH_NO_BOND, scheme=AUTH_SC, key_size=16,
             initiator=KEY_ENC | KEY_ID, responder=KEY_ENC | KEY_ID, oob=0, passkey=0):
    _z.default().security(capabilities, bonding, scheme, key_size, initiator, responder, oob, passkey)


def bonded():
    return _z.default().bonded()


def remove_bonded(addr):
    _z.default().remove_bonded(addr)


def confirm_passkey(confirmed):
    _z.default().confirm_passkey(confirmed)


def add_service(service):
    _z.default().add_service(service)


def add_callback(evt, callback):
    _z.default().add_callback(evt, callback)


def advertising(interval, timeout=0, payload="", scanrsp="", mode=ADV_CONN_UND):
    _z.default().advertising(interval, timeout, payload, scanrsp, mode)


def start_advertising():
    _z.default().start_advertising()


def stop_advertising():
    _z.default().stop_advertising()


def scanning(interval=10, window=10, duplicates=0, filter=SCAN_FILTER_ALL, addr=SCAN_ADDR_PUBLIC, active=0):
    _z.default().scanning(interval, window, duplicates, filter, addr, active)


def start_scanning(duration=1000):
    _z.default().start_scanning(duration)


def stop_scanning():
    _z.default().stop_scanning()


def start():
    _z.default().start()
