"""Helpers for tests that drive the twin through the real drivers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

from bench import Scenario, Topology, bundled_path, load_with_topology
from firmware_bridge.driver import (
    CommitResult,
    Credentials,
    RouterDriver,
    new_session,
    open_driver,
)
from firmware_bridge.headers import SealedFrame, seal_frame
from firmware_bridge.keystore import KeyStore
from scheduler import PlannedPacket
from sim_hw.twin import Twin

SCENARIO, TOPOLOGY = load_with_topology(bundled_path())
TAU = SCENARIO.frame.tau_s  # 4.9 ms
SLOT_US = 5000


def seal(store: KeyStore, frame: int, packets: Iterable[PlannedPacket]) -> SealedFrame:
    return seal_frame(SCENARIO, TOPOLOGY, store.sealing_keys(), frame, list(packets))


def entries(sealed: SealedFrame, router: str) -> list[bytes]:
    return [blob for _, _, blob in sealed.tables.get(router, [])]


@contextlib.asynccontextmanager
async def drivers(
    twin: Twin,
    timeout: float = 0.5,
    watchdog_ms: int | None = 0,
    only: Sequence[str] | None = None,
    **options: float,
) -> AsyncIterator[dict[str, RouterDriver]]:
    """An open driver per router, all of one session, with the key store's command keys;
    each claims its router with the watchdog off (``watchdog_ms=None``: claimed at the
    first command, with the router's default watchdog)."""
    keys = KeyStore.open(twin.keystore_dir).command_keys()
    session = new_session()
    out: dict[str, RouterDriver] = {}
    try:
        for rid, address in twin.addresses.items():
            if only is not None and rid not in only:
                continue
            creds = Credentials(keys[rid], session)
            d = open_driver(address, rid, timeout=timeout, credentials=creds, **options)
            await d.open()
            out[rid] = d
            if watchdog_ms is not None:
                await d.set_watchdog(watchdog_ms)
        yield out
    finally:
        for d in out.values():
            await d.close()


async def commit_all(ds: dict[str, RouterDriver], sealed: SealedFrame) -> dict[str, CommitResult]:
    out = {}
    for rid, d in ds.items():
        crc = await d.upload_bank(sealed.frame, entries(sealed, rid))
        out[rid] = await d.commit(sealed.frame, crc)
    return out


async def arm_all(
    twin: Twin, ds: dict[str, RouterDriver], frame: int, lead_s: float = 0.4
) -> float:
    """Arm ``frame`` on every router to start ``lead_s`` (wall) from now, at one true
    instant (the twin's clocks have no offset unless a test gives them one). Returns the
    true start time (us). The lead must cover arming every router one after the other
    on a loaded machine, or the last arm comes too late and is refused."""
    sample = await next(iter(ds.values())).read_clock()
    start = sample.t_router_us + int(lead_s * twin.accel * 1e6)
    for d in ds.values():
        await d.arm(frame, start)
    return float(start)


async def until(twin: Twin, true_us: float, ds: Sequence[RouterDriver] = ()) -> None:
    """Sleep until the twin's true time passes ``true_us``, heart-beating ``ds``."""
    while twin.now() < true_us:
        for d in ds:
            await d.heartbeat()
        await asyncio.sleep(min(0.01, max(0.0, (true_us - twin.now()) / twin.accel / 1e6)))
    twin.advance()


def keystore_at(path: Path, scenario: Scenario = SCENARIO) -> KeyStore:
    return KeyStore.init(path, scenario)


def frame_end(start: float, slots: int = 200) -> float:
    return start + slots * SLOT_US


__all__ = ["SCENARIO", "TAU", "TOPOLOGY", "Topology"]
