"""The routers of a bench as the controller drives them: one driver each, operations run
on every live router at once, routers that stop answering dropped and probed again.

Nothing here knows whether a router is real or the twin: it holds addresses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from bench import Scenario
from firmware_bridge.driver import Credentials, RouterDriver, new_session, open_driver
from firmware_bridge.errors import BridgeError, OwnedError
from firmware_bridge.keystore import KeyStore
from firmware_bridge.tasks import stop_tasks

log = logging.getLogger(__name__)

T = TypeVar("T")

HEARTBEAT_FRACTION = 4  # heartbeats per watchdog timeout
PROBE_TIMEOUT_S = 0.3  # a down router gets this long to answer a rejoin probe
ESTOP_TIMEOUT_S = 1.0  # per router: an e-stop must not wait on a dead link for long


class FleetError(BridgeError):
    """The bench cannot be driven: a router missing at start, or the wrong device."""


class EstoppedError(FleetError):
    """A router's e-stop is latched (state ``fault``). Someone stopped it on purpose: its
    own button, ``ppr estop``, the Ctrl-C of an earlier run. Only an explicit request
    (``ppr run --clear-estop``) clears it."""


@dataclass
class Fleet:
    scenario: Scenario
    addresses: dict[str, str]
    store: KeyStore
    watchdog_ms: int = 1000
    timeout_s: float = 0.1
    clear_estop: bool = False  # clear a latched e-stop at start (an operator's decision)
    drivers: dict[str, RouterDriver] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # router -> why
    on_alarm: Callable[[str, str, str], None] = lambda router, code, text: None
    # this run's session: a router obeys the commands of the one session that claimed it
    session: int = field(default_factory=new_session)
    _hearts: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    # -- life cycle -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect to every router and set it up; every one must answer at start."""
        missing = [r.id for r in self.scenario.routers if r.id not in self.addresses]
        if missing:
            raise FleetError(
                f"no address for router {', '.join(missing)}: give each [[routers]] entry an "
                f'address = "modbus-tcp://host:port?unit=N" (or run on the twin)'
            )
        keys = self.store.command_keys()
        for rid in (r.id for r in self.scenario.routers):
            creds = Credentials(keys[rid], self.session)
            self.drivers[rid] = open_driver(
                self.addresses[rid], rid, timeout=self.timeout_s, credentials=creds
            )
        results = await self.each(self._setup, self.drivers)
        failed = {rid: exc for rid, exc in results.items() if isinstance(exc, BaseException)}
        if failed:
            rid, exc = next(iter(failed.items()))
            await self.close()
            if isinstance(exc, OwnedError):
                raise FleetError(
                    f"router {rid} at {self.addresses[rid]} is owned by another session "
                    f"({exc.session:#010x}): another controller drives it; stop that run "
                    f"first, or wait for its watchdog to lapse"
                ) from exc
            raise FleetError(f"router {rid} at {self.addresses[rid]} is not ready: {exc}") from exc
        for rid in self.drivers:
            self._hearts[rid] = asyncio.create_task(self._heartbeats(rid), name=f"heartbeat {rid}")

    async def _setup(self, rid: str) -> None:
        d = self.drivers[rid]
        await d.open()
        ident = await d.identify()
        expected = self.store.party("router", rid).index
        if ident.router_wire_id != expected:
            raise FleetError(
                f"router {rid} answers as wire id {ident.router_wire_id}, the key store says "
                f"{expected}: wrong address, or keys not provisioned for this bench"
            )
        f = self.scenario.frame
        await d.set_frame_geometry(f.slots, round(f.slot_ms * 1000), round(f.guard_us))
        d.watchdog_ms = self.watchdog_ms  # the claim starts the watchdog with it
        await d.claim()  # refused while another controller's session owns the router
        state = (await d.read_status()).state
        if state == "fault" and not self.clear_estop:
            raise EstoppedError(
                f"router {rid} is e-stopped (state fault); find out why, then run with "
                f"--clear-estop to clear it"
            )
        if state in ("safe", "fault"):
            # safe: its watchdog tripped when the last controller went away
            await d.clear_fault()
        await d.heartbeat()

    async def close(self) -> None:
        await stop_tasks(*self._hearts.values())
        self._hearts.clear()
        await asyncio.gather(*(d.close() for d in self.drivers.values()), return_exceptions=True)

    # -- running operations on routers ----------------------------------------------------
    @property
    def live(self) -> list[str]:
        return [rid for rid in self.drivers if rid not in self.down]

    async def each(
        self, op: Callable[[str], Awaitable[T]], routers: Iterable[str]
    ) -> dict[str, T | BaseException]:
        """Run ``op(router)`` on the routers at once; a router's failure is its result."""
        routers = list(routers)
        results = await asyncio.gather(*(op(r) for r in routers), return_exceptions=True)
        for r in results:
            if isinstance(r, asyncio.CancelledError):
                raise r
        return dict(zip(routers, results, strict=True))

    def mark_down(self, rid: str, why: str) -> None:
        if rid not in self.down:
            self.down[rid] = why
            log.info("router %s dropped: %s", rid, why)
            self.on_alarm(
                rid,
                "router_offline",
                f"router {rid} stopped answering ({why}); planning without it",
            )

    async def probe(self) -> list[str]:
        """Try every down router once; set up the ones that answer again and return them."""

        async def attempt(rid: str) -> None:
            async with asyncio.timeout(PROBE_TIMEOUT_S + 4 * self.timeout_s):
                await self._setup(rid)

        back = []
        results = await self.each(attempt, list(self.down))
        for rid, res in results.items():
            if isinstance(res, EstoppedError):
                if self.down[rid] != str(res):  # say it once, not at every probe
                    self.down[rid] = str(res)
                    self.on_alarm(rid, "router_estopped", f"{res}; planning without it")
            elif not isinstance(res, BaseException):
                del self.down[rid]
                back.append(rid)
                self.on_alarm(
                    rid,
                    "router_answers",
                    f"router {rid} answers again; it rejoins once its clock is in step",
                )
        return back

    async def estop(self) -> dict[str, BaseException | None]:
        """E-stop every router at once, down ones included (they may only be mute)."""

        async def stop(rid: str) -> None:
            async with asyncio.timeout(ESTOP_TIMEOUT_S):
                await self.drivers[rid].estop()

        results = await self.each(stop, self.drivers)
        return {rid: r if isinstance(r, BaseException) else None for rid, r in results.items()}

    async def _heartbeats(self, rid: str) -> None:
        """Feed one router's watchdog. One loop per router: a reply lost on one link
        delays that router's next beat only (its request still fed the watchdog)."""
        period = max(0.02, self.watchdog_ms / 1000.0 / HEARTBEAT_FRACTION)
        misses = 0
        while True:
            if rid not in self.down:
                try:
                    await self.drivers[rid].heartbeat()
                    misses = 0
                except OwnedError as exc:  # our watchdog lapsed and another controller came
                    self.mark_down(rid, exc.message)
                except BridgeError as exc:
                    misses += 1
                    if misses >= 2:
                        self.mark_down(rid, f"no heartbeat reply: {exc}")
            await asyncio.sleep(period)
