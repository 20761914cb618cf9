"""The GATT server of one board: its services, attribute values and notifications.

The board's core owns the attribute values (truncation, append mode, buffers); the air keeps a
copy of each so it can serve peer reads, refreshed by ``gatts_value`` after every change. Reads
of attributes flagged READ_AUTHORIZED (or every read when the board set ``read_request``) first
ask the board (GATTS_READ_REQUEST); a long read asks once, on its first Read. Peer writes
become GATTS_WRITE events.
"""
from __future__ import annotations

import asyncio
import contextvars
import errno
import inspect
import logging
import struct
from typing import TYPE_CHECKING, Any, Optional

from bumble import att, core, gatt
from bumble.device import Connection, Device

from ..protocol import CONSTANTS, LIMITS
from .port_link import CONN_NONE, AirError

if TYPE_CHECKING:
    from .board import Board

logger = logging.getLogger(__name__)

FLAG = CONSTANTS["flag"]
ATT_ERR = CONSTANTS["att_error"]

#: Largest ATT MTU the air negotiates (Bumble's server maximum; MAX_ATTR_LEN + 5).
MAX_ATT_MTU = 517
#: Longest GAP Device Name characteristic value, bytes (Core Vol 3 Part C 12.1).
GAP_DEVICE_NAME_MAX = 248
#: Status of GATTS_INDICATE_DONE when no confirmation came (errno ETIMEDOUT) / link lost (EIO).
INDICATE_TIMEOUT_STATUS = errno.ETIMEDOUT
INDICATE_FAILED_STATUS = errno.EIO

#: True while Bumble serves a Read Blob request (the host was asked on the first Read).
_in_blob_read: contextvars.ContextVar[bool] = contextvars.ContextVar("_in_blob_read", default=False)


def _permissions(flags: int) -> att.Attribute.Permissions:
    """Bumble permissions of an attribute with these bb flags (schema [constants.flag]).

    Only access: the security flags are checked in our own callbacks (:func:`_security_error`),
    because Bumble's checks differ from a real peripheral's. Bumble counts any encrypted LE link
    as authenticated (its ``connection.authenticated`` is set by every encryption change, Just
    Works included), and answers every unencrypted access with Insufficient Encryption, where
    the Core specification (and NimBLE) answer Insufficient Authentication when the peer has no
    bond.
    """
    perms = att.Attribute.Permissions(0)
    if flags & FLAG["READ"]:
        perms |= att.Attribute.READABLE
    if flags & (FLAG["WRITE"] | FLAG["WRITE_NO_RESPONSE"]):
        perms |= att.Attribute.WRITEABLE
    return perms


#: Flags asking for an encrypted link, for a read and for a write (AUTHENTICATED and LESC imply it).
_NEEDS_ENCRYPTION = {
    "read": FLAG["READ_ENCRYPTED"] | FLAG["READ_AUTHENTICATED"] | FLAG["READ_LESC"],
    "write": FLAG["WRITE_ENCRYPTED"] | FLAG["WRITE_AUTHENTICATED"] | FLAG["WRITE_LESC"],
}
#: Flags asking for an authenticated (MITM-protected) link.
_NEEDS_MITM = {
    "read": FLAG["READ_AUTHENTICATED"] | FLAG["READ_LESC"],
    "write": FLAG["WRITE_AUTHENTICATED"] | FLAG["WRITE_LESC"],
}
_NEEDS_LESC = {"read": FLAG["READ_LESC"], "write": FLAG["WRITE_LESC"]}


async def _security_error(board: Board, connection: Connection, flags: int, access: str) -> int:
    """ATT error a peer's ``access`` ("read" / "write") gets for lack of link security, or 0.

    The order and codes are NimBLE's (ble_att_svr_check_perms) and the Core specification's
    (5.4 Vol 3 Part C 10.3.1): on an unencrypted link, Insufficient Encryption when a bond (LTK)
    with the peer exists, so it encrypts with it, else Insufficient Authentication, so it pairs;
    on an encrypted link without MITM protection, Insufficient Authentication.
    """
    if not flags & _NEEDS_ENCRYPTION[access]:
        return 0
    security = board.security
    if not connection.encryption:
        if await security.peer_has_ltk(connection):
            return ATT_ERR["INSUFFICIENT_ENCRYPTION"]
        return ATT_ERR["INSUFFICIENT_AUTHENTICATION"]
    if flags & _NEEDS_MITM[access] and not security.link_authenticated(connection):
        return ATT_ERR["INSUFFICIENT_AUTHENTICATION"]
    if flags & _NEEDS_LESC[access] and not security.link_lesc(connection):
        return ATT_ERR["INSUFFICIENT_AUTHENTICATION"]
    return 0


class GattServer:
    """The board's attributes as Bumble serves them; its ops are ``op_gatts_*``."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.reset()

    def reset(self) -> None:
        #: The air's copy of each local attribute's value, by handle (see the module doc).
        self.values: dict[int, bytearray] = {}
        #: bb flags of each local attribute, by handle.
        self.attr_flags: dict[int, int] = {}

    def configure(self, device: Device) -> None:
        """Apply the board's configuration: MTU limit, GAP Device Name and Appearance values."""
        device.gatt_server.max_mtu = min(self.board.config.mtu, MAX_ATT_MTU)
        self._apply_gap_values(device)

    def _apply_gap_values(self, device: Device) -> None:
        config = self.board.config
        for attribute in device.gatt_server.attributes:
            if attribute.type == gatt.GATT_DEVICE_NAME_CHARACTERISTIC:
                attribute.value = config.gap_name.encode("utf-8")[:GAP_DEVICE_NAME_MAX]
            elif attribute.type == gatt.GATT_APPEARANCE_CHARACTERISTIC:
                attribute.value = struct.pack("<H", config.appearance)

    def hook_read_blob(self, device: Device) -> None:
        """Mark Read Blob requests so the host is asked once per long read, on its Read."""
        server = device.gatt_server
        original = server.on_att_read_blob_request

        def on_att_read_blob_request(bearer, request):
            token = _in_blob_read.set(True)
            try:
                return original(bearer, request)
            finally:
                _in_blob_read.reset(token)

        server.on_att_read_blob_request = on_att_read_blob_request  # type: ignore[method-assign]

    def _value(self, box: list[int]) -> att.AttributeValue:
        """Read/write callbacks of one local attribute; box[0] is its handle once assigned."""
        board = self.board

        async def read(connection: Connection) -> bytes:
            handle = box[0]
            flags = self.attr_flags.get(handle, 0)
            if not flags & FLAG["READ"]:
                raise att.ATT_Error(ATT_ERR["READ_NOT_PERMITTED"])
            error = await _security_error(board, connection, flags, "read")
            if error:
                raise att.ATT_Error(error)
            if (flags & FLAG["READ_AUTHORIZED"] or board.config.read_request) \
                    and not _in_blob_read.get():
                answer = await board.ask("GATTS_READ_REQUEST", connection.handle, handle)
                if answer.u:
                    raise att.ATT_Error(answer.u & 0xFF)
            return bytes(self.values.get(handle, b""))

        async def write(connection: Connection, value: bytes) -> None:
            handle = box[0]
            flags = self.attr_flags.get(handle, 0)
            if not flags & (FLAG["WRITE"] | FLAG["WRITE_NO_RESPONSE"]):
                raise att.ATT_Error(ATT_ERR["WRITE_NOT_PERMITTED"])
            error = await _security_error(board, connection, flags, "write")
            if error:
                raise att.ATT_Error(error)
            # Only the ATT limit refuses a write here. The registered max_len is not: the
            # core truncates to the attribute's current buffer, which gatts_set_buffer may have
            # grown since registration, as MicroPython's stacks do (they never refuse).
            if len(value) > LIMITS["MAX_ATTR_LEN"]:
                raise att.ATT_Error(att.ATT_INVALID_ATTRIBUTE_LENGTH_ERROR)
            # The core stores the write (truncation, append mode) and the port sends the
            # stored value back (gatts_value), so this copy only bridges that round trip.
            self.values[handle] = bytearray(value)
            board.emit("GATTS_WRITE", connection.handle, handle, bytes(value), 0)

        return att.AttributeValue(read=read, write=write)

    def _local_attribute(self, handle: int, op: str) -> att.Attribute:
        attribute = self.board.dev(op).gatt_server.get_attribute(handle)
        if attribute is None or handle not in self.values:
            raise AirError(errno.EINVAL, op, f"no local attribute {handle}")
        return attribute

    def _indicate(self, connection: Connection, attribute: att.Attribute, handle: int,
                  value: bytes) -> None:
        board = self.board
        device = board.dev("gatts_indicate")

        async def indicate() -> None:
            status = 0
            try:
                await device.indicate_subscriber(connection, attribute, value, force=True)
            except (TimeoutError, asyncio.TimeoutError):
                status = INDICATE_TIMEOUT_STATUS
            except Exception:
                logger.info("%s: indication on %d failed", board.name, connection.handle,
                            exc_info=True)
                status = INDICATE_FAILED_STATUS
            if device.lookup_connection(connection.handle) is connection or status == 0:
                board.emit("GATTS_INDICATE_DONE", connection.handle, handle, status)

        board.spawn(indicate(), "indicate")

    def _secure_cccd(self, cccd: att.Attribute, chr_flags: int) -> None:
        """Subscribing (a CCCD write) needs the security any access to the value needs: NimBLE's
        rule (ble_gatts_register_clt_cfg_dsc), which the nrf_sd port follows too."""
        needs = FLAG["WRITE"]
        if chr_flags & (_NEEDS_ENCRYPTION["read"] | _NEEDS_ENCRYPTION["write"]):
            needs |= FLAG["WRITE_ENCRYPTED"]
        if chr_flags & (_NEEDS_MITM["read"] | _NEEDS_MITM["write"]):
            needs |= FLAG["WRITE_AUTHENTICATED"]
        if chr_flags & (_NEEDS_LESC["read"] | _NEEDS_LESC["write"]):
            needs |= FLAG["WRITE_LESC"]
        if needs == FLAG["WRITE"]:
            return
        value = cccd.value
        if not isinstance(value, att.AttributeValueV2):
            return   # a CCCD the script registered itself: its own flags apply (see _value)
        board = self.board

        async def write(bearer: Any, data: bytes) -> None:
            connection = bearer.connection if att.is_enhanced_bearer(bearer) else bearer
            error = await _security_error(board, connection, needs, "write")
            if error:
                raise att.ATT_Error(error)
            result = value.write(bearer, data)
            if inspect.isawaitable(result):
                await result

        cccd.value = att.AttributeValueV2(read=value.read, write=write)

    # -- ops --------------------------------------------------------------------------------
    async def op_gatts_register(self, services: list[Any]) -> list[Any]:
        device = self.board.dev("gatts_register")
        built: list[tuple[gatt.Service, list[tuple[gatt.Characteristic, list[Any], list[Any], int]]]] = []
        boxes: list[tuple[list[int], int, bytes]] = []
        for entry in services:
            # [uuid, characteristics] or [uuid, characteristics, secondary] (schema).
            svc_uuid, chrs = entry[0], entry[1]
            secondary = len(entry) > 2 and bool(entry[2])
            chr_objs = []
            # max_len is the core's business (it truncates writes to its buffer): not kept here.
            for chr_uuid, flags, _max_len, init, dscs in chrs:
                dsc_objs = []
                dsc_boxes = []
                for dsc_uuid, dflags, _dmax_len, dinit in dscs:
                    box = [0]
                    descriptor = gatt.Descriptor(core.UUID.from_bytes(bytes(dsc_uuid)),
                                                 _permissions(dflags),
                                                 self._value(box))
                    dsc_objs.append(descriptor)
                    dsc_boxes.append(box)
                    boxes.append((box, dflags, bytes(dinit)))
                box = [0]
                characteristic = gatt.Characteristic(
                    core.UUID.from_bytes(bytes(chr_uuid)),
                    gatt.Characteristic.Properties(flags & 0xFF),
                    _permissions(flags),
                    self._value(box),
                    descriptors=dsc_objs,
                )
                boxes.append((box, flags, bytes(init)))
                chr_objs.append((characteristic, box, dsc_boxes, flags))
            built.append((gatt.Service(core.UUID.from_bytes(bytes(svc_uuid)),
                                       [c for c, _b, _d, _f in chr_objs], primary=not secondary),
                          chr_objs))

        server = device.gatt_server
        server.services.clear()
        server.attributes.clear()
        server.attributes_by_handle.clear()
        device.add_default_services()
        self._apply_gap_values(device)
        device.add_services([service for service, _chrs in built])

        self.values.clear()
        self.attr_flags.clear()
        result = []
        for service, chr_objs in built:
            chr_results = []
            for characteristic, box, dsc_boxes, flags in chr_objs:
                box[0] = characteristic.handle
                for descriptor, dbox in zip(characteristic.descriptors, dsc_boxes):
                    dbox[0] = descriptor.handle
                cccd = 0
                for attribute in server.attributes[characteristic.handle:
                                                   characteristic.end_group_handle]:
                    if attribute.type == gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR:
                        cccd = attribute.handle
                        self._secure_cccd(attribute, flags)
                chr_results.append([characteristic.handle - 1, characteristic.handle, cccd,
                                    [dbox[0] for dbox in dsc_boxes]])
            result.append([service.handle, chr_results])
        for box, flags, init in boxes:
            self.attr_flags[box[0]] = flags
            self.values[box[0]] = bytearray(init)
        return result

    async def op_gatts_value(self, handle: int, data: bytes) -> None:
        if handle not in self.values:
            raise AirError(errno.EINVAL, "gatts_value", f"no local attribute {handle}")
        self.values[handle] = bytearray(data)

    async def op_gatts_notify(self, conn: int, handle: int, data: Optional[bytes]) -> None:
        device = self.board.dev("gatts_notify")
        attribute = self._local_attribute(handle, "gatts_notify")
        if conn == CONN_NONE:
            # Send the current value to every subscriber, as its CCCD asks.
            value = bytes(self.values[handle]) if data is None else bytes(data)
            for bearer, cccds in list(device.gatt_server.subscribers.items()):
                cccd = cccds.get(handle)
                if not cccd or len(cccd) != 2 or not isinstance(bearer, Connection):
                    continue
                if cccd[0] & 0x01:
                    await device.notify_subscriber(bearer, attribute, value, force=True)
                elif cccd[0] & 0x02:
                    self._indicate(bearer, attribute, handle, value)
            return
        connection = self.board.conn(conn, "gatts_notify")
        value = bytes(self.values[handle]) if data is None else bytes(data)
        await device.notify_subscriber(connection, attribute, value, force=True)

    async def op_gatts_indicate(self, conn: int, handle: int, data: Optional[bytes]) -> None:
        attribute = self._local_attribute(handle, "gatts_indicate")
        connection = self.board.conn(conn, "gatts_indicate")
        value = bytes(self.values[handle]) if data is None else bytes(data)
        self._indicate(connection, attribute, handle, value)
