"""SecretStore.peers and forget_peer: the bonded peers, named by their PEER_SEC records."""
from blebridge import protocol as P
from blebridge.ble.bonds import SecretStore

SEC = P.CONSTANTS["secret_type"]
ALICE = bytes.fromhex("010203040506")
BOB = bytes.fromhex("a1a2a3a4a5a6")


def store(tmp_path):
    s = SecretStore(tmp_path / "b.json")
    s.set(SEC["PEER_SEC"], b"\x01" + ALICE, b"alice-keys")
    s.set(SEC["PEER_SEC"], b"\x00" + BOB, b"bob-keys")
    s.set(SEC["OUR_SEC"], b"\x01" + ALICE, b"our-keys-for-alice")
    return s


def test_peers_lists_each_peer_sec_record_in_bonding_order(tmp_path):
    assert store(tmp_path).peers() == [(1, ALICE), (0, BOB)]


def test_peers_of_an_empty_store_is_empty(tmp_path):
    assert SecretStore(tmp_path / "b.json").peers() == []


def test_forget_peer_deletes_every_record_of_that_peer(tmp_path):
    s = store(tmp_path)
    assert s.forget_peer(ALICE) is True
    assert s.peers() == [(0, BOB)] and s.get(SEC["OUR_SEC"], 0, b"\x01" + ALICE) is None


def test_forget_peer_is_kept_in_the_file(tmp_path):
    store(tmp_path).forget_peer(BOB)
    assert SecretStore(tmp_path / "b.json").peers() == [(1, ALICE)]


def test_forget_unknown_peer_changes_nothing(tmp_path):
    s = store(tmp_path)
    assert s.forget_peer(bytes(6)) is False and len(s.peers()) == 2
