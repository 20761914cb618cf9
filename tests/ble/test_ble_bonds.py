"""The host's store of bonding secrets (blebridge.ble.bonds): file modes, atomic writes,
unusable files, lookups."""
import os
import stat

import pytest

from blebridge.ble.bonds import SecretStore, default_dir
from blebridge.errors import BlebridgeError, SecretStoreError

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


def test_secret_without_key_is_found_by_its_index_in_insertion_order(tmp_path):
    store = SecretStore(tmp_path / "board.json")
    store.set(2, b"first", b"1")
    store.set(2, b"second", b"2")
    assert store.get(2, 1, None) == b"2"


def test_index_past_the_end_finds_nothing(tmp_path):
    store = SecretStore(tmp_path / "board.json")
    store.set(2, b"only", b"1")
    assert store.get(2, 1, None) is None


def test_setting_none_deletes_the_secret(tmp_path):
    store = SecretStore(tmp_path / "board.json")
    store.set(2, b"peer", b"ltk")
    store.set(2, b"peer", None)
    assert SecretStore(tmp_path / "board.json").get(2, 0, b"peer") is None


def test_store_for_a_board_is_named_after_its_id_in_the_directory_given(tmp_path):
    assert SecretStore.for_board("C0FFEE000001", tmp_path).path == tmp_path / "C0FFEE000001.json"


def test_store_for_a_board_drops_characters_unsafe_in_a_file_name(tmp_path):
    assert SecretStore.for_board("sim:../bob", tmp_path).path == tmp_path / "simbob.json"


def test_default_directory_is_the_environment_variable_when_set(tmp_path, monkeypatch):
    monkeypatch.setenv("BLEBRIDGE_SECRETS_DIR", str(tmp_path))
    assert default_dir() == tmp_path


def test_old_micropython_path_is_the_same_store():
    from blebridge.micropython.secrets import SecretStore as Old
    assert Old is SecretStore


def test_clear_forgets_every_secret(tmp_path):
    store = SecretStore(tmp_path / "board.json")
    store.set(1, b"\x01", b"\x02")
    store.clear()
    assert store.get(1, 0, None) is None and SecretStore(tmp_path / "board.json").get(1, 0, None) is None
