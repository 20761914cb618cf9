"""The host's store of bonding secrets as the MicroPython layer uses it: unusable files met by
active(True) and by the board's questions (the store itself: tests/ble/test_ble_bonds.py)."""
import pytest

from blebridge.errors import SecretStoreError
from blebridge.micropython import BLE

# The FakeBoard's address (LSB first on the wire) as the store names its file.
BOARD_FILE = "060504030201.json"

UNUSABLE_FILES = {
    "truncated": b'{"2": [["0102", "ab',
    "empty": b"",
    "not_json": b"\x00\x13garbage",
    "not_utf8": b"\xff\xfe{}",
    "wrong_top_type": b"[1, 2]",
    "type_not_a_number": b'{"peer": []}',
    "entries_not_a_list": b'{"2": "0102"}',
    "entry_not_a_pair": b'{"2": [["0102"]]}',
    "entry_not_hex": b'{"2": [["zz", "00"]]}',
}


@pytest.fixture
def secrets_dir(tmp_path, monkeypatch):
    path = tmp_path / "secrets"
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(path))
    return path


def write_board_file(secrets_dir, content):
    secrets_dir.mkdir(mode=0o700)
    path = secrets_dir / BOARD_FILE
    path.write_bytes(content)
    return path


def test_active_raises_secret_store_error_for_an_unusable_file(board, secrets_dir):
    path = write_board_file(secrets_dir, UNUSABLE_FILES["truncated"])
    ble = BLE(board)
    try:
        with pytest.raises(SecretStoreError) as info:
            ble.active(True)
        assert info.value.filename == str(path)
        assert board.active is False
    finally:
        ble.close()


def test_board_question_with_an_unusable_store_gets_the_safe_answer(board, secrets_dir, capsys):
    path = write_board_file(secrets_dir, UNUSABLE_FILES["truncated"])
    ble = BLE(board)
    try:
        ble.irq(lambda event, data: None)
        board.emit("SET_SECRET", 1, 2, b"peer", b"ltk")
        board.emit("GET_SECRET", 2, 2, 0, b"peer")
        assert board.replies == [(1, False), (2, None)]
        assert str(path) in capsys.readouterr().err
    finally:
        ble.close()


def test_unusable_file_is_never_overwritten(board, secrets_dir):
    path = write_board_file(secrets_dir, UNUSABLE_FILES["truncated"])
    ble = BLE(board)
    try:
        with pytest.raises(SecretStoreError):
            ble.active(True)
        board.emit("SET_SECRET", 1, 2, b"peer", b"ltk")
        assert path.read_bytes() == UNUSABLE_FILES["truncated"]
    finally:
        ble.close()


def test_active_works_again_once_the_file_is_moved_away(board, secrets_dir):
    path = write_board_file(secrets_dir, UNUSABLE_FILES["truncated"])
    ble = BLE(board)
    try:
        with pytest.raises(SecretStoreError):
            ble.active(True)
        path.rename(secrets_dir / "kept.json")
        assert ble.active(True) is True
    finally:
        ble.close()
