"""A run of the controller, start to end: keys, journal, the bench (twin or hardware),
the MQTT feed, the fleet of drivers and the frame loop, torn down in order.

Used by ``ppr run`` and by the end-to-end tests. An e-stop (signal, MQTT command or
``stop()``) opens every gate before anything else is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench import Scenario
from firmware_bridge.files import write_file
from firmware_bridge.headers.errors import KeyStoreError
from firmware_bridge.keystore import KeyStore
from firmware_bridge.tasks import stop_tasks
from router.controller.fleet import Fleet, FleetError
from router.controller.loop import Controller
from router.controller.outcome import FrameOutcome, RunOptions
from router.controller.outdir import lock_out_dir
from router.controller.prepare import Prepared
from router.controller.stages import FrameStage, MarketStage
from router.journal import Journal, verify_journal
from router.journal.verify import VerifyReport

if TYPE_CHECKING:  # the twin and the feed are imported only when a run uses them
    from router.mqtt import BrokerConfig, MqttFeed
    from scheduler import Plan
    from sim_hw.twin import FrameTiming, Twin

log = logging.getLogger(__name__)

JOURNAL = "journal.sqlite"
ADDRESSES = "addresses.json"  # where ppr estop finds the routers of a run


@dataclass
class SessionConfig:
    scenario: Scenario
    out_dir: Path = Path("ppr-out")
    keys_dir: Path = Path("ppr-keys")
    transport: str = "tcp"  # the twin's: tcp | rtu | serial
    line_baud: int | None = None  # pace the twin's serial line like a real one
    hardware: bool = False  # use the scenario's addresses instead of the twin
    mqtt: str | None = None
    watchdog_ms: int = 1000
    timeout_s: float = 0.1  # per request, before it is sent again
    faults: tuple[str, ...] = ()  # twin faults (ppr twin's --fault syntax)
    clear_estop: bool = False  # clear routers' latched e-stops at start
    options: RunOptions = field(default_factory=RunOptions)
    stage: FrameStage | None = None  # decides each frame's transfers (default: the market)


@dataclass
class SessionResult:
    outcomes: list[FrameOutcome]
    alarms: list[str]
    journal: Path
    verified: VerifyReport
    estopped: bool
    stop_reason: str | None
    last_frame: FrameOutcome | None


class Session:
    def __init__(
        self,
        config: SessionConfig,
        *,
        on_frame: Callable[[FrameOutcome, int], None] = lambda o, alarms: None,
        on_alarm: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.config = config
        self.on_frame = on_frame
        self.on_alarm = on_alarm
        self.alarms: list[str] = []
        self.controller: Controller | None = None
        self.fleet: Fleet | None = None
        self.twin: Twin | None = None  # the in-process twin, when the run is on it
        self.feed: MqttFeed | None = None
        self.estopped = False
        self.twin_timing: list[FrameTiming] = []  # on the twin: its gate timing, per frame
        self.stop_requested: str | None = None  # kept for a controller not made yet
        self._estop_task: asyncio.Task[None] | None = None

    # -- the parts ------------------------------------------------------------------------
    def keys(self) -> KeyStore:
        """The key store; created for the scenario when the run is on the twin and there is
        none yet (real routers must have been provisioned from an existing store)."""
        cfg = self.config
        if not (cfg.keys_dir / "store.json").exists():
            if cfg.hardware:
                raise KeyStoreError(
                    f"{cfg.keys_dir}: no key store; create it with ppr keys init and provision "
                    f"the routers' keys before driving hardware"
                )
            return KeyStore.init(cfg.keys_dir, cfg.scenario)
        store = KeyStore.open(cfg.keys_dir)
        for kind, ids in (
            ("router", [r.id for r in cfg.scenario.routers]),
            ("terminal", [t.id for t in cfg.scenario.terminals]),
        ):
            known = {p.name for p in store.parties() if p.kind == kind}
            missing = [i for i in ids if i not in known]
            if missing:
                raise KeyStoreError(
                    f"{cfg.keys_dir}: no keys for {kind} {', '.join(missing)}; add them with "
                    f"ppr keys rotate SCENARIO (and provision real routers)"
                )
        return store

    def addresses(self, twin_addresses: dict[str, str] | None) -> dict[str, str]:
        if twin_addresses is not None:
            return dict(twin_addresses)
        found = {r.id: r.address for r in self.config.scenario.routers if r.address}
        missing = [r.id for r in self.config.scenario.routers if not r.address]
        if missing:
            raise FleetError(
                f"--hardware: router {', '.join(missing)} has no address; give each "
                f'[[routers]] entry address = "modbus-tcp://host:port?unit=N" (or RTU/serial)'
            )
        return found

    # -- the run --------------------------------------------------------------------------
    async def run(self) -> SessionResult:
        cfg = self.config
        # everything a user can get wrong is checked before anything is written
        broker = None
        if cfg.mqtt:
            from router.mqtt import parse_broker_url

            broker = parse_broker_url(cfg.mqtt)
        if cfg.hardware:
            self.addresses(None)
        store = self.keys()  # on the twin, a new store is the first thing written
        journal: Journal | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                twin_addresses = None
                if not cfg.hardware:
                    from sim_hw.twin import Twin  # the controller proper never knows

                    twin = Twin(
                        cfg.scenario,
                        cfg.keys_dir,
                        transport=cfg.transport,
                        faults=cfg.faults,
                        line_baud=cfg.line_baud,
                    )
                    await stack.enter_async_context(twin)
                    self.twin = twin
                    twin_addresses = twin.addresses
                addresses = self.addresses(twin_addresses)
                fleet = Fleet(
                    cfg.scenario,
                    addresses,
                    store,
                    cfg.watchdog_ms,
                    cfg.timeout_s,
                    clear_estop=cfg.clear_estop,
                )
                await fleet.open()  # every router answers, or nothing is written
                stack.push_async_callback(fleet.close)
                self.fleet = fleet
                cfg.out_dir.mkdir(parents=True, exist_ok=True)
                stack.enter_context(lock_out_dir(cfg.out_dir))  # before writing anything in it
                listing = json.dumps(addresses, indent=1) + "\n"
                write_file(cfg.out_dir / ADDRESSES, listing.encode())
                journal_path = cfg.out_dir / JOURNAL
                # every record, not just the tail: a bad middle record is never appended to
                journal = Journal.open(
                    journal_path,
                    store.signing_key(),
                    genesis={"scenario": cfg.scenario.name},
                    check="full",
                )
                feed = await self._feed(stack, broker)
                controller = Controller(
                    cfg.scenario,
                    fleet,
                    store,
                    journal,
                    cfg.options,
                    stage=cfg.stage or MarketStage(),
                )
                controller.on_frame = self._frame_done
                controller.on_alarm = self._alarm
                self.controller = controller
                if self.stop_requested:  # Ctrl-C while the bench was being set up
                    controller.request_stop(self.stop_requested)
                commands = None
                if feed is not None:
                    from router.controller.commands import serve_commands

                    commands = asyncio.create_task(serve_commands(feed, self), name="mqtt commands")
                try:
                    outcomes = await controller.run()
                finally:
                    if commands is not None:
                        await stop_tasks(commands)
                    if controller.stop_reason and not self.estopped:
                        await self.estop(controller.stop_reason)
                    if self._estop_task is not None:
                        await asyncio.gather(self._estop_task, return_exceptions=True)
                    if feed is not None:
                        await feed.flush(2.0)
        finally:
            if journal is not None:
                journal.close()
        return SessionResult(
            outcomes=outcomes,
            alarms=self.alarms,
            journal=journal_path,
            verified=verify_journal(journal_path, store.signing_public_key()),
            estopped=self.estopped,
            stop_reason=controller.stop_reason,
            last_frame=next((o for o in reversed(outcomes) if not o.skipped), None),
        )

    async def _feed(
        self, stack: contextlib.AsyncExitStack, broker: BrokerConfig | None
    ) -> MqttFeed | None:
        if broker is None:
            return None
        from router.mqtt import MqttFeed, Topics

        feed = MqttFeed(broker, Topics.for_scenario(self.config.scenario.name))
        self.feed = await stack.enter_async_context(feed)
        return self.feed

    def last_scenario(self) -> Scenario:
        """The scenario the last frame that ran was planned on (market transfers added)."""
        return self._last_prepared().scenario

    def last_plan(self) -> Plan:
        return self._last_prepared().plan

    def _last_prepared(self) -> Prepared:
        assert self.controller is not None and self.controller.last_prepared is not None
        return self.controller.last_prepared

    # -- stopping -------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """E-stop now (signal handlers, MQTT): every gate opens, then the run ends. Before
        the routers are set up, the run ends (with an e-stop) as soon as they are."""
        self.stop_requested = self.stop_requested or reason
        if self.controller is not None:
            self.controller.request_stop(reason)
        if self._estop_task is None:
            self._estop_task = asyncio.get_running_loop().create_task(
                self.estop(reason), name="estop"
            )

    async def estop(self, reason: str) -> None:
        if self.estopped or self.fleet is None:
            return
        self.estopped = True
        if self.controller is not None:
            from router.controller.clocks import now

            self.controller.stopped_at = now()
        results = await self.fleet.estop()
        failed = {r: str(e) for r, e in results.items() if e is not None}
        if self.controller is not None:
            await self.controller.journal.append_async(
                "estop", {"reason": reason, "failed": failed}
            )
            self.controller.alarm(
                None,
                "controller",
                "estop",
                f"e-stop ({reason}): every gate opened"
                + (f"; not confirmed by {', '.join(failed)}" if failed else ""),
            )

    # -- callbacks ------------------------------------------------------------------------
    def _alarm(self, frame: int | None, source: str, code: str, text: str) -> None:
        self.alarms.append(text)
        self.on_alarm(text)
        if self.feed is not None:
            from router.controller.telemetry import publish_alarm

            publish_alarm(self.feed, frame, source, code, text)

    def _frame_done(self, outcome: FrameOutcome) -> None:
        if self.twin is not None and (timing := self.twin.frame_timing(outcome.frame)):
            self.twin_timing.append(timing)
        self.on_frame(outcome, len(self.alarms))
        if self.feed is not None and self.controller is not None:
            from router.controller.telemetry import publish_frame

            publish_frame(self.feed, self.controller, outcome, len(self.alarms))
