"""Frame numbers are never sealed twice under the same keys: the key store's reservation
(``sealed-frame``) that is missing, or behind a frame the routers or the journal have
seen, is refused with advice (rotate the epoch); what guards the keys and the frame
numbers may not be writable by others; and a run takes its output folder's lock before
it touches the bench."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from bench import load_scenario
from firmware_bridge.driver import open_driver
from firmware_bridge.headers.errors import KeyPermissionError
from firmware_bridge.keystore import SEALED_FRAMES, FrameReservationError, KeyStore
from router.controller.session import Session
from router.journal import JournalLockedError, read_records
from tests.bench_process import TwinProcess, ppr, router_states
from tests.controller_support import bench, config

pytestmark = pytest.mark.timeout(180)


def roll_back(keys: Path, frame: int, epoch: int) -> None:
    """What restoring an old backup of the reservation does."""
    (keys / SEALED_FRAMES).write_text(f'{{"frame": {frame}, "epoch": {epoch}}}\n')


def test_a_deleted_reservation_is_refused_before_anything_is_written(tmp_path: Path):
    KeyStore.init(tmp_path / "keys", bench())
    (tmp_path / "keys" / SEALED_FRAMES).unlink()
    result = subprocess.run(
        ppr("run", "--out", "out", "--keys", "keys", "--frames", "1"),
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"error: {Path('keys') / SEALED_FRAMES}: missing; it holds the highest frame number "
        "sealed under epoch 1's keys, and without it a run could seal those frames again. "
        "Start a new epoch: ppr keys rotate --keys keys (then provision the routers)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]  # no output folder


async def test_a_reservation_behind_the_journal_is_refused_until_the_epoch_turns(tmp_path: Path):
    first = await Session(config(tmp_path, bench(), frames=1)).run()
    assert [o.frame for o in first.outcomes] == [1]
    keys, journal = tmp_path / "keys", tmp_path / "out" / "journal.sqlite"
    roll_back(keys, 0, 1)  # frame 1 was sealed under epoch 1; the file says none was
    before = list(read_records(journal))
    with pytest.raises(FrameReservationError) as info:
        await Session(config(tmp_path, bench(), frames=1)).run()
    assert str(info.value) == (
        f"{keys / SEALED_FRAMES}: reserves frames up to 0, but the journal {journal} has seen "
        f"frame 1: the reservation was deleted or rolled back, and frame 1 may be sealed "
        f"again under epoch 1's keys. Start a new epoch: ppr keys rotate --keys {keys} (then "
        "provision the routers)"
    )
    assert list(read_records(journal)) == before  # nothing appended
    KeyStore.open(keys).rotate()  # what the advice says; the in-process twin is provisioned
    after = await Session(config(tmp_path, bench(), frames=1)).run()
    assert [o.frame for o in after.outcomes] == [2] and after.verified.ok
    assert KeyStore.open(keys).reservation().epoch == 2


async def test_a_reservation_behind_the_routers_is_refused_with_another_out(tmp_path: Path):
    """The issue's case: a new output folder has a new journal, but the routers remember
    the frames they ran; resealing frame 1 under the same keys is refused."""
    keys = tmp_path / "keys"
    KeyStore.init(keys, bench())
    with TwinProcess(keys) as twin:
        scenario = load_scenario(twin.scenario_file(tmp_path / "bench.toml"))
        ran = await Session(config(tmp_path, scenario, frames=1, hardware=True)).run()
        assert [o.frame for o in ran.outcomes] == [1]
        roll_back(keys, 0, 1)
        elsewhere = config(tmp_path, scenario, frames=1, hardware=True)
        elsewhere.out_dir = tmp_path / "elsewhere"
        with pytest.raises(FrameReservationError, match=r"but router R1 has seen frame 1: "):
            await Session(elsewhere).run()
    assert not elsewhere.out_dir.exists()  # nothing written


@pytest.mark.parametrize("name", ["store.json", SEALED_FRAMES, ".", "epoch-0001"])
def test_what_guards_keys_and_frame_numbers_is_not_writable_by_others(tmp_path: Path, name: str):
    store = KeyStore.init(tmp_path / "keys", bench())
    path = store.path / name
    path.chmod(path.stat().st_mode | 0o002)
    with pytest.raises(KeyPermissionError) as info:
        KeyStore.open(store.path)
    shown = store.path if name == "." else path
    assert str(info.value).startswith(f"{shown}: writable by group or others (mode ")
    assert str(info.value).endswith(f"fix with: chmod go-w {shown}")


async def test_a_locked_out_folder_is_refused_before_the_bench_is_touched(tmp_path: Path):
    """The first run's routers are e-stopped; a second run on its folder, even with
    --clear-estop, must not reach them: the lock comes first."""
    keys, out = tmp_path / "keys", tmp_path / "out"
    KeyStore.init(keys, bench())
    with TwinProcess(keys) as twin:
        scenario = load_scenario(twin.scenario_file(tmp_path / "bench.toml"))

        async def estop(rid: str, address: str) -> None:
            async with open_driver(address, rid) as d:
                await d.estop()

        await asyncio.gather(*(estop(r, a) for r, a in twin.addresses.items()))
        out.mkdir()
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what the first run holds
            second = config(tmp_path, scenario, frames=1, hardware=True, clear_estop=True)
            with pytest.raises(JournalLockedError, match="another ppr run is writing here"):
                await Session(second).run()
        finally:
            os.close(fd)
        assert set((await router_states(twin.addresses)).values()) == {"fault"}
    assert list(out.iterdir()) == []


def test_the_reservation_survives_a_rotation_marked_as_the_old_epochs(tmp_path: Path):
    """After a rotation nothing is sealed under the new keys yet: routers that ran
    further (under the old keys) move the reservation up instead of being refused."""
    store = KeyStore.init(tmp_path / "keys", bench())
    assert store.reserve_frame(1) == 1
    rotated = KeyStore.open(store.path).rotate()
    assert rotated.reservation().frame == 1 and rotated.reservation().epoch == 1
    rotated.check_frames({"router R1": 7})  # not refused: frames 2..7 were never ours
    assert rotated.reserve_frame(1) == 8
    roll_back(store.path, 3, 2)  # now epoch 2 sealed frame 8, and the file says 3
    with pytest.raises(FrameReservationError, match=r"frames 4\.\.7 may be sealed again"):
        rotated.check_frames({"router R1": 7})
