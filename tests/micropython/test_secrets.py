"""The host's store of bonding secrets as the MicroPython layer uses it: unusable files met by
active(True) and by the board's questions (the store itself: tests/ble/test_ble_bonds.py)."""
import pytest

from blebridge.errors import SecretStoreError
from blebridge.micropython import BLE

# The FakeBoard's address (LSB first on the wire) as the store names its file.
BOARD_FILE = "060504030201.json"

#: A bond file cut short (the store's own tests try every kind of unusable file).
TRUNCATED = b'{"2": [["0102", "ab'


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
    path = write_board_file(secrets_dir, TRUNCATED)
    ble = BLE(board)
    try:
        with pytest.raises(SecretStoreError) as info:
            ble.active(True)
        assert info.value.filename == str(path)
        assert board.active is False
    finally:
        ble.close()


def test_board_question_with_an_unusable_store_gets_the_safe_answer(board, secrets_dir, capsys):
    path = write_board_file(secrets_dir, TRUNCATED)
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
    path = write_board_file(secrets_dir, TRUNCATED)
    ble = BLE(board)
    try:
        with pytest.raises(SecretStoreError):
            ble.active(True)
        board.emit("SET_SECRET", 1, 2, b"peer", b"ltk")
        assert path.read_bytes() == TRUNCATED
    finally:
        ble.close()


def test_active_works_again_once_the_file_is_moved_away(board, secrets_dir):
    path = write_board_file(secrets_dir, TRUNCATED)
    ble = BLE(board)
    try:
        with pytest.raises(SecretStoreError):
            ble.active(True)
        path.rename(secrets_dir / "kept.json")
        assert ble.active(True) is True
    finally:
        ble.close()
