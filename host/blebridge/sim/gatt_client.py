"""The GATT client of one board: discovery, reads, writes, MTU exchange, notifications received.

Every procedure runs in a task on Bumble's GATT client: the op returns at once and the results
come as events (…_RESULT per item, then …_DONE with the ATT status, 0 on success). Notifications
and indications from a peer become GATTC_NOTIFY / GATTC_INDICATE.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Optional

from bumble import att, core, gatt
from bumble.device import Connection

from ..protocol import CONSTANTS
from .gatt_server import MAX_ATT_MTU
from .port_link import AirError

if TYPE_CHECKING:
    from .board import Board

logger = logging.getLogger(__name__)

ATT_ERR = CONSTANTS["att_error"]


def _uuid_bytes(uuid: core.UUID) -> bytes:
    return uuid.to_bytes()


def _uuid_filter(uuid: Optional[bytes]) -> Optional[core.UUID]:
    """The UUID an op filters on (Bumble UUID bytes, LSB first); None or empty: no filter."""
    return core.UUID.from_bytes(bytes(uuid)) if uuid else None


class GattClient:
    """GATT procedures the board starts on its connections; its ops are ``op_gattc_*``."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def attach(self, connection: Connection) -> None:
        """Report the notifications and indications a peer sends on this new connection."""
        board = self.board
        client = connection.gatt_client
        on_notification = client.on_att_handle_value_notification
        on_indication = client.on_att_handle_value_indication

        # A response and a notification that arrive in one connection event reach Bumble
        # within a loop step or two; Bumble handles the notification at once but finishes the
        # procedure the response answers only when its task next runs. The board must hear
        # them in link order (a stack finishes the procedure as it reads the response), so a
        # notification behind an answered procedure waits here until that procedure reports.
        held: list[Callable[[], None]] = []

        def answered() -> bool:
            pending = client.pending_response
            return pending is not None and pending.done()

        def release() -> None:
            if answered():
                asyncio.get_running_loop().call_soon(release)
                return
            while held:
                held.pop(0)()

        def in_order(report: Callable[[], None]) -> None:
            if not held and not answered():
                report()
                return
            if not held:
                asyncio.get_running_loop().call_soon(release)
            held.append(report)

        def notification(pdu) -> None:
            def report() -> None:
                board.emit("GATTC_NOTIFY", connection.handle, pdu.attribute_handle,
                           bytes(pdu.attribute_value))
                # Bumble's own handler only serves subscribers made through Bumble (none,
                # unless code on the air made one) and logs a warning per notification without
                # one: a 10-minute `make soak` wrote 224,000 such lines (21 MB) to the air's log.
                if client.notification_subscribers.get(pdu.attribute_handle):
                    on_notification(pdu)
            in_order(report)

        def indication(pdu) -> None:
            def report() -> None:
                board.emit("GATTC_INDICATE", connection.handle, pdu.attribute_handle,
                           bytes(pdu.attribute_value))
                on_indication(pdu)
            in_order(report)

        client.on_att_handle_value_notification = notification  # type: ignore[method-assign]
        client.on_att_handle_value_indication = indication  # type: ignore[method-assign]

    def _procedure(self, conn: int, op: str, done: str,
                   body: Callable[[Connection], Awaitable[None]], *done_fields: Any) -> None:
        """Run ``body`` in a task; then emit ``done`` with its ATT status if still connected."""
        board = self.board
        connection = board.conn(conn, op)

        async def run() -> None:
            status = 0
            try:
                await body(connection)
            except att.ATT_Error as exc:
                status = exc.error_code
            except Exception:
                logger.info("%s: %s on %d failed", board.name, op, conn, exc_info=True)
                status = ATT_ERR["UNLIKELY_ERROR"]
            if board.connection_alive(connection):
                board.emit(done, conn, *done_fields, status)

        board.spawn(run(), op)

    # -- ops --------------------------------------------------------------------------------
    async def op_gattc_services(self, conn: int, uuid: Optional[bytes] = None) -> None:
        board = self.board

        async def body(connection: Connection) -> None:
            want = _uuid_filter(uuid)
            if want is not None:
                await by_uuid(connection.gatt_client, want)
                return
            for service in await connection.gatt_client.discover_services():
                board.emit("GATTC_SERVICE_RESULT", conn, service.handle,
                           service.end_group_handle, _uuid_bytes(service.uuid))

        async def by_uuid(client: Any, want: core.UUID) -> None:
            # Discover Primary Service by Service UUID (Core Vol 3 Part G 4.4.2, Find By Type
            # Value), as MicroPython's NimBLE and BTstack bindings do: its end group handles are
            # the service's own, where Read By Group Type may end the last service at 0xFFFF
            # (NimBLE's server does).
            handle = 1
            while handle <= 0xFFFF:
                response = await client.send_request(att.ATT_Find_By_Type_Value_Request(
                    starting_handle=handle, ending_handle=0xFFFF,
                    attribute_type=gatt.GATT_PRIMARY_SERVICE_ATTRIBUTE_TYPE,
                    attribute_value=want.to_pdu_bytes()))
                if response.op_code == att.Opcode.ATT_ERROR_RESPONSE:
                    if response.error_code != att.ATT_ATTRIBUTE_NOT_FOUND_ERROR:
                        raise att.ATT_Error(response.error_code)
                    return
                if not response.handles_information:
                    return
                for first, end in response.handles_information:
                    board.emit("GATTC_SERVICE_RESULT", conn, first, end, _uuid_bytes(want))
                last_end = response.handles_information[-1][1]
                if last_end <= handle - 1 or last_end == 0xFFFF:
                    return
                handle = last_end + 1

        self._procedure(conn, "gattc_services", "GATTC_SERVICE_DONE", body)

    async def op_gattc_chars(self, conn: int, start: int, end: int,
                             uuid: Optional[bytes] = None) -> None:
        board = self.board
        want = _uuid_filter(uuid)

        async def body(connection: Connection) -> None:
            client = connection.gatt_client
            handle = max(start, 1)
            while handle <= end:
                response = await client.send_request(att.ATT_Read_By_Type_Request(
                    starting_handle=handle, ending_handle=end,
                    attribute_type=gatt.GATT_CHARACTERISTIC_ATTRIBUTE_TYPE))
                if response.op_code == att.Opcode.ATT_ERROR_RESPONSE:
                    if response.error_code != att.ATT_ATTRIBUTE_NOT_FOUND_ERROR:
                        raise att.ATT_Error(response.error_code)
                    return
                if not response.attributes:
                    return
                for decl_handle, value in response.attributes:
                    properties, value_handle = struct.unpack_from("<BH", value)
                    chr_uuid = core.UUID.from_bytes(value[3:])
                    if want is None or chr_uuid == want:
                        board.emit("GATTC_CHARACTERISTIC_RESULT", conn, decl_handle,
                                   value_handle, properties, _uuid_bytes(chr_uuid))
                handle = response.attributes[-1][0] + 1

        self._procedure(conn, "gattc_chars", "GATTC_CHARACTERISTIC_DONE", body)

    async def op_gattc_dscs(self, conn: int, start: int, end: int,
                            uuid: Optional[bytes] = None) -> None:
        board = self.board
        want = _uuid_filter(uuid)

        async def body(connection: Connection) -> None:
            if start < 1 or start > end:
                return
            for descriptor in await connection.gatt_client.discover_descriptors(
                    start_handle=start, end_handle=end):
                if want is None or descriptor.type == want:
                    board.emit("GATTC_DESCRIPTOR_RESULT", conn, descriptor.handle,
                               _uuid_bytes(descriptor.type))

        self._procedure(conn, "gattc_dscs", "GATTC_DESCRIPTOR_DONE", body)

    async def op_gattc_read(self, conn: int, handle: int) -> None:
        board = self.board

        async def body(connection: Connection) -> None:
            value = await connection.gatt_client.read_value(handle)
            board.emit("GATTC_READ_RESULT", conn, handle, bytes(value))

        self._procedure(conn, "gattc_read", "GATTC_READ_DONE", body, handle)

    async def op_gattc_write(self, conn: int, handle: int, data: bytes, with_response: bool) -> None:
        connection = self.board.conn(conn, "gattc_write")
        # A Write Request or Command carries at most ATT_MTU - 3 value bytes. Longer data is
        # cut to that, as NimBLE's ATT client does (MicroPython's ble_mtu tests expect it);
        # Bumble would put the oversized PDU on the link as it is.
        value = bytes(data[:connection.att_mtu - 3])
        if not with_response:
            await connection.gatt_client.write_value(handle, value, with_response=False)
            return

        async def body(connection: Connection) -> None:
            await connection.gatt_client.write_value(handle, value, with_response=True)

        self._procedure(conn, "gattc_write", "GATTC_WRITE_DONE", body, handle)

    async def op_gattc_mtu(self, conn: int) -> None:
        board = self.board
        connection = board.conn(conn, "gattc_mtu")
        client = connection.gatt_client
        if client.mtu_exchange_done:
            raise AirError(errno.EALREADY, "gattc_mtu", "MTU already exchanged")

        async def exchange() -> None:
            # Bumble's client sets the bearer's MTU itself (Connection.on_att_mtu_update), which
            # emits the one MTU_EXCHANGED of this side; reporting again here would double it.
            await client.request_mtu(min(board.config.mtu, MAX_ATT_MTU))

        board.spawn(exchange(), "MTU exchange")
