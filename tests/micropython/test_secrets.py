"""The host's store of bonding secrets: file modes, atomic writes, unusable files."""
import os
import stat

import pytest

from blebridge.errors import BlebridgeError, SecretStoreError
from blebridge.micropython import BLE
from blebridge.micropython.secrets import SecretStore

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


def test_store_file_and_directory_are_user_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        store = SecretStore(tmp_path / "new" / "board.json")
        store.set(2, b"peer", b"ltk")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "board.json").st_mode) == 0o600


def test_store_keeps_the_mode_of_a_directory_it_did_not_create(tmp_path):
    tmp_path.chmod(0o755)
    SecretStore(tmp_path / "board.json").set(2, b"peer", b"ltk")
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o755


def test_store_leaves_no_temporary_file(tmp_path):
    store = SecretStore(tmp_path / "board.json")
    store.set(2, b"peer", b"ltk")
    store.set(2, b"peer", None)
    assert [p.name for p in tmp_path.iterdir()] == ["board.json"]


def test_secrets_are_read_back_by_a_new_store(tmp_path):
    SecretStore(tmp_path / "board.json").set(2, b"peer", b"ltk")
    assert SecretStore(tmp_path / "board.json").get(2, 0, b"peer") == b"ltk"


@pytest.mark.parametrize("content", UNUSABLE_FILES.values(), ids=UNUSABLE_FILES.keys())
def test_unusable_file_raises_secret_store_error_naming_it(tmp_path, content):
    path = tmp_path / "board.json"
    path.write_bytes(content)
    with pytest.raises(SecretStoreError) as info:
        SecretStore(path)
    assert isinstance(info.value, OSError) and isinstance(info.value, BlebridgeError)
    assert info.value.filename == str(path) and str(path) in str(info.value)
    assert "move it away" in str(info.value)


def test_unreadable_file_raises_secret_store_error_with_its_errno(tmp_path):
    path = tmp_path / "board.json"
    path.mkdir()     # a directory where the file should be: EISDIR, even for root
    with pytest.raises(SecretStoreError) as info:
        SecretStore(path)
    assert info.value.errno is not None and str(path) in str(info.value)


def test_failed_write_raises_and_keeps_the_secrets_stored_before(tmp_path):
    directory = tmp_path / "secrets"
    store = SecretStore(directory / "board.json")
    store.set(2, b"old", b"1")
    (directory / "board.json").unlink()
    directory.rmdir()
    directory.write_text("a file where the directory was")
    with pytest.raises(SecretStoreError, match="cannot write it"):
        store.set(2, b"new", b"2")
    assert store.get(2, 0, b"old") == b"1" and store.get(2, 0, b"new") is None


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
