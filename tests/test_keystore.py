"""The key store on disk and ``ppr keys``: permissions, rotation, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from bench import bundled_path, load_scenario, load_with_topology, parse_dict
from firmware_bridge import keystore
from firmware_bridge.headers import (
    KeyPermissionError,
    KeyStoreError,
    RouterHeaderState,
    open_inner,
    seal_frame,
)
from firmware_bridge.headers import layout as L
from firmware_bridge.keystore import KeyStore
from scheduler import PlannedPacket, plan_transfers
from tests.helpers import chain, transfer

SCENARIO, TOPOLOGY = load_with_topology(bundled_path())


def ppr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "keys", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore.init(tmp_path / "keys", SCENARIO)


def test_init_writes_private_keys_0600_and_wire_ids_in_scenario_order(store: KeyStore):
    keys = sorted((store.path / "epoch-0001").iterdir())
    assert len(keys) == 1 + len(SCENARIO.routers) + len(SCENARIO.terminals)
    assert {oct(k.stat().st_mode & 0o777) for k in keys} == {"0o600"}
    assert [p.name for p in store.parties() if p.kind == "router"] == ["R1", "R2", "R3", "R4"]
    assert store.party("terminal", "MEC3").index == 5


def test_store_keys_seal_and_open_end_to_end(store: KeyStore):
    plan = plan_transfers(SCENARIO, TOPOLOGY, "greedy")
    sealed = seal_frame(SCENARIO, TOPOLOGY, store.sealing_keys(), 7, plan.packets)
    for router_id, table in sealed.tables.items():
        result = RouterHeaderState(store.ring("router", router_id)).commit(7, table)
        assert not result.refused
    entry = RouterHeaderState(store.ring("router", "R1")).commit(7, sealed.tables["R1"]).accepted
    to_mec1 = next(e for e in entry if e.out_port == 3)  # MEC1 sits on R1:3
    got = open_inner(
        store.ring("terminal", "MEC1"), to_mec1.inner, epoch=1, frame=7, slot=to_mec1.slot
    )
    assert SCENARIO.transfers[got.fields.transfer].sink == "MEC1"


def test_group_readable_private_key_is_refused(store: KeyStore):
    key = store.path / "epoch-0001" / "router-R2.key"
    key.chmod(0o644)
    with pytest.raises(KeyPermissionError) as info:
        KeyStore.open(store.path)
    assert str(info.value) == (
        f"{key}: private key is accessible by group or others (mode 0644); "
        f"fix with: chmod 600 {key}"
    )
    key.chmod(0o600)
    KeyStore.open(store.path)


def test_cli_refuses_0644_key_in_one_line(tmp_path: Path):
    assert ppr("init", cwd=tmp_path).returncode == 0
    key = tmp_path / "ppr-keys" / "epoch-0001" / "controller.key"
    key.chmod(0o644)
    for action in ("show", "rotate"):
        result = ppr(action, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("error: ppr-keys/epoch-0001/controller.key: private key")
        assert "chmod 600 ppr-keys/epoch-0001/controller.key" in result.stderr


def test_cli_show_prints_public_keys_only(tmp_path: Path):
    assert ppr("init", "--store", "k", cwd=tmp_path).returncode == 0
    result = ppr("show", str(bundled_path()), "--store", "k", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    store = KeyStore.open(tmp_path / "k")
    for party in [None, *store.parties()]:
        assert store.public_key(1, party).hex() in result.stdout
        private = store._private(1, party).private_bytes_raw().hex()
        assert private not in result.stdout
    assert "PRIVATE" not in result.stdout
    assert "T1=0, T2=1" in result.stdout


def test_cli_init_refuses_an_existing_store(tmp_path: Path):
    assert ppr("init", cwd=tmp_path).returncode == 0
    result = ppr("init", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr
        == "error: ppr-keys: a key store (or other files) already exists; use ppr keys rotate\n"
    )


def test_cli_without_a_store(tmp_path: Path):
    result = ppr("show", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: ppr-keys: no key store here; create one with: ppr keys init\n"


def test_rotate_new_controller_identity_devices_kept(store: KeyStore):
    before = {p: store.public_key(1, p) for p in store.parties()}
    controller = store.public_key(1, None)
    store.rotate()
    assert store.epoch == 2 and sorted(store.manifest.epochs) == [1, 2]
    assert store.public_key(2, None) != controller
    assert {p: store.public_key(2, p) for p in store.parties()} == before
    # the derived keys differ between epochs even for unchanged device identities
    ring = store.ring("router", "R1")
    sealed = seal_frame(SCENARIO, TOPOLOGY, store.sealing_keys(2), 5, _packets())
    table = sealed.tables["R1"]
    assert ring.keys[2].aead.decrypt(*_nonce_body_ad(table[0], 2, 5))
    with pytest.raises(InvalidTag):  # same router identity, previous epoch's key
        ring.keys[1].aead.decrypt(*_nonce_body_ad(table[0], 2, 5))


def test_rotate_all_renews_devices_and_prunes_old_epochs(store: KeyStore):
    r1 = store.public_key(1, store.party("router", "R1"))
    store.rotate(all_parties=True)
    store.rotate()
    assert sorted(store.manifest.epochs) == [2, 3]
    assert not (store.path / "epoch-0001").exists()
    assert store.public_key(3, store.party("router", "R1")) != r1
    assert KeyStore.open(store.path).epoch == 3


def test_rotate_appends_new_parties_without_renumbering(store: KeyStore):
    data = chain()
    data["transfers"] = [transfer("T1", "S1", "L1", 3)]
    other = parse_dict(data)[0]
    store.rotate(other)
    routers = [p.name for p in store.parties() if p.kind == "router"]
    assert routers == ["R1", "R2", "R3", "R4", "A", "B", "C"]
    assert store.party("terminal", "MEC3").index == 5
    assert store.party("terminal", "S1").index == 6
    KeyStore.open(store.path).sealing_keys()  # every party has keys in the new epoch


def test_failed_rotation_leaves_the_store_as_it_was(store: KeyStore, monkeypatch):
    real = keystore.write_file

    def crash_on_manifest(path: Path, data: bytes, mode: int) -> None:
        if path.name == keystore.MANIFEST:
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(keystore, "write_file", crash_on_manifest)
    with pytest.raises(KeyStoreError, match="No space left on device"):
        store.rotate()
    monkeypatch.undo()
    again = KeyStore.open(store.path)
    assert again.epoch == 1
    again.sealing_keys()
    assert again.rotate().epoch == 2  # the orphaned epoch directory is replaced


def test_failed_init_leaves_nothing(tmp_path: Path, monkeypatch):
    def crash(path: Path, data: bytes, mode: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(keystore, "write_file", crash)
    with pytest.raises(KeyStoreError):
        KeyStore.init(tmp_path / "keys", SCENARIO)
    assert list(tmp_path.iterdir()) == []


def test_tampered_public_key_is_detected(store: KeyStore):
    manifest = store.path / keystore.MANIFEST
    other = KeyStore.init(store.path.with_name("other"), load_scenario(bundled_path()))
    text = manifest.read_text().replace(
        store.public_key(1, None).hex(), other.public_key(1, None).hex()
    )
    manifest.write_text(text)
    with pytest.raises(KeyStoreError, match="does not match the public key"):
        KeyStore.open(store.path).sealing_keys()


def test_malformed_manifest_is_a_store_error(store: KeyStore):
    (store.path / keystore.MANIFEST).write_text('{"format": 1, "epoch": "x"}')
    with pytest.raises(KeyStoreError, match=r"store\.json"):
        KeyStore.open(store.path)


def _packets() -> list[PlannedPacket]:
    return [PlannedPacket("T1", ("PV1", "MEC1"), (3, 3))]


def _nonce_body_ad(entry: tuple[int, int, bytes], epoch: int, frame: int):
    slot, index, blob = entry
    nonce = L.OUTER_NONCE.struct.pack(L.LAYER_OUTER, epoch, frame, slot, index, 0)
    ad = L.OUTER_AD.struct.pack(L.LAYOUT_VERSION, epoch, 0, frame, slot, index)
    return nonce, blob[L.OUTER_HEADER.size :], ad


def test_reserved_frames_only_go_up_across_journals_and_threads(store: KeyStore):
    """Every run sealing with this store reserves its frame numbers here: each reserved
    number is above every earlier one, whatever the run's own journal asks for, and two
    runs reserving at once never get the same number."""
    from concurrent.futures import ThreadPoolExecutor

    assert store.last_sealed_frame() == 0
    assert store.reserve_frame(1) == 1
    assert store.reserve_frame(1) == 2  # a new journal starting at frame 1
    assert store.reserve_frame(10) == 10  # a journal further on
    assert KeyStore.open(store.path).last_sealed_frame() == 10  # durable, read back
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: KeyStore.open(store.path).reserve_frame(1), range(40)))
    assert sorted(got) == list(range(11, 51))


def test_a_damaged_frame_mark_is_a_store_error(store: KeyStore):
    (store.path / keystore.SEALED_FRAMES).write_text("twelve\n")
    with pytest.raises(KeyStoreError, match="not a frame reservation"):
        store.reserve_frame(1)
