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
import traceback
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
from router.errors import RunFailedError, project_errors
from router.journal import Journal, JournalError, journal_last_frame, verify_journal
from router.journal.verify import VerifyReport
from router.journal.witness import Witness, check_not_cut, make_witness

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
    mqtt_password_file: Path | None = None  # the MQTT user's password, when not in the URL
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
    witness: Witness | None = None  # the journal's head, as kept in the key store


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
        self.failure: BaseException | None = None  # what ended the run, if it failed
        self.failed_at: int | None = None  # the last frame journaled when it failed
        self.witness: Witness | None = None  # the journal's head, last witnessed
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the parts ------------------------------------------------------------------------
    def keys(self) -> KeyStore:
        """The key store; created for the scenario when the run is on the twin and there is
        none yet (real routers must have been provisioned from an existing store)."""
        return self._existing_keys() or KeyStore.init(self.config.keys_dir, self.config.scenario)

    def _existing_keys(self) -> KeyStore | None:
        """The key store, opened and checked; None when the twin's is still to be made."""
        cfg = self.config
        if not (cfg.keys_dir / "store.json").exists():
            if cfg.hardware:
                raise KeyStoreError(
                    f"{cfg.keys_dir}: no key store; create it with ppr keys init and provision "
                    f"the routers' keys before driving hardware"
                )
            return None
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

    def _check_faults(self) -> None:
        """The twin's fault specs, parsed now: a bad one is refused before anything is
        written (the twin parses them again when it starts)."""
        from sim_hw.faults import parse_fault

        for spec in self.config.faults:
            parse_fault(spec, self.config.scenario)

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
        self._loop = asyncio.get_running_loop()
        # everything a user can get wrong is checked before anything is written
        broker = None
        if cfg.mqtt:
            from router.mqtt import parse_broker_url

            broker = parse_broker_url(cfg.mqtt, cfg.mqtt_password_file)
        if cfg.hardware:
            self.addresses(None)
        else:
            self._check_faults()
        store = self._existing_keys()  # checked, not yet created
        # the out dir's lock before anything touches the bench or writes anything: a
        # second run on this folder must not reach the first run's routers
        with lock_out_dir(cfg.out_dir):
            store = store or self.keys()  # on the twin, a new store is the first thing written
            return await self._run_locked(store, broker)

    async def _run_locked(self, store: KeyStore, broker: BrokerConfig | None) -> SessionResult:
        cfg = self.config
        journal: Journal | None = None
        journal_path = cfg.out_dir / JOURNAL
        # every record and the witness before any router is claimed, off the loop: on a
        # long journal this takes seconds, longer than a claimed router's watchdog waits
        await asyncio.to_thread(_check_journal, journal_path, store, cfg.scenario.name)
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
                # frame numbers: the key store's reservation is not behind what the routers
                # and the journal have seen (refused with advice otherwise)
                await self._check_frames(store, journal_path)
                listing = json.dumps(addresses, indent=1) + "\n"
                write_file(cfg.out_dir / ADDRESSES, listing.encode())
                # checked in full above (the out dir's lock keeps other writers away)
                journal = Journal.open(
                    journal_path, store.signing_key(), genesis={"scenario": cfg.scenario.name}
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
                controller.witness_for = self._witness_for
                self.controller = controller
                if self.stop_requested:  # Ctrl-C while the bench was being set up
                    controller.request_stop(self.stop_requested)
                commands = None
                if feed is not None:
                    from router.controller.commands import serve_commands

                    commands = asyncio.create_task(serve_commands(feed, self), name="mqtt commands")
                    commands.add_done_callback(self._commands_ended)
                raised = False
                try:
                    outcomes = await controller.run()
                except Exception as exc:  # any failure ends the run safely
                    raised = True
                    self._failed(exc)
                    outcomes = controller.outcomes
                finally:
                    if commands is not None:
                        await stop_tasks(commands)
                    if self.failure is not None:
                        # the loop's own stop record is missing when it raised
                        await self._end_safely(controller, stop_record=raised)
                    elif controller.stop_reason and not self.estopped:
                        await self.estop(controller.stop_reason)
                    if self._estop_task is not None:
                        await asyncio.gather(self._estop_task, return_exceptions=True)
                    self.witness = await self._witness_end(journal, store)
                    if feed is not None:
                        await feed.flush(2.0)
        finally:
            if journal is not None:
                journal.close()
        if self.failure is not None:
            raise self._failure_error()
        return SessionResult(
            outcomes=outcomes,
            alarms=self.alarms,
            journal=journal_path,
            verified=verify_journal(journal_path, store.signing_public_key()),
            estopped=self.estopped,
            stop_reason=controller.stop_reason,
            last_frame=next((o for o in reversed(outcomes) if not o.skipped), None),
            witness=self.witness,
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

    async def _check_frames(self, store: KeyStore, journal: Path) -> None:
        """Refuse a key store whose frame reservation is missing or behind the frames the
        routers or this folder's journal have seen (``FrameReservationError``)."""
        assert self.fleet is not None
        statuses = await self.fleet.each(
            lambda rid: self.fleet.drivers[rid].read_status(),  # type: ignore[union-attr]
            self.fleet.live,
        )
        seen = {
            f"router {rid}": max(s.frame, s.staged_frame)
            for rid, s in statuses.items()
            if not isinstance(s, BaseException)
        }
        last = journal_last_frame(journal)
        if last is not None:
            seen[f"the journal {journal}"] = last
        await asyncio.to_thread(store.check_frames, seen)

    # -- failures -------------------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        """A failure inside the run: the frame loop stops, and the run ends safely."""
        if self.failure is None:
            self.failure = exc
            self.failed_at = self._current_frame()
            log.debug("the run failed", exc_info=exc)
        if self.controller is not None:
            self.controller.request_stop(f"failed: {_describe(exc)}")

    def _commands_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._failed(exc)  # the MQTT commands are served no more: stop the run

    def _current_frame(self) -> int | None:
        return None if self.controller is None else self.controller.journal.last_frame()

    async def _end_safely(self, controller: Controller, *, stop_record: bool) -> None:
        """After a failure: every gate opened when a frame was armed (routers that were
        never armed conduct nothing), then a ``stop`` record naming the failure. The
        journal is closed by the caller whatever happens here."""
        assert self.failure is not None
        reason = f"failed: {_describe(self.failure)}"
        if controller.arming and not self.estopped:
            await self.estop(reason)
        if not stop_record:
            return
        trace = "".join(traceback.format_exception(self.failure))
        try:
            await controller.journal.append_async(
                "stop", {"reason": reason, "frame": self.failed_at, "traceback": trace}
            )
        except JournalError as exc:  # the failure may be the journal's own: say so, go on
            log.error("the stop record could not be written: %s", exc)

    def _failure_error(self) -> RunFailedError:
        assert self.failure is not None
        where = "" if self.failed_at is None else f" at frame {self.failed_at}"
        done = "every gate was opened (e-stop), " if self.estopped else ""
        return RunFailedError(
            f"{_describe(self.failure)}; the run stopped{where}: {done}the journal has a "
            f"stop record and is closed",
            self.failure,
        )

    # -- the journal's witness ------------------------------------------------------------
    def _witness_for(self, frame: int) -> tuple[str, dict[str, object]]:
        """The journal's head as it stands, signed, to keep with frame ``frame``'s
        reservation (called in the reserving thread); also retained on MQTT."""
        assert self.controller is not None
        witness = make_witness(self.controller.journal, frame)
        self.witness = witness
        if self.feed is not None:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.feed.publish_witness, witness)
        return witness.journal, witness.model_dump(mode="json")

    async def _witness_end(self, journal: Journal, store: KeyStore) -> Witness | None:
        """The journal's final head, kept in the key store (and retained on MQTT)."""
        try:
            witness = make_witness(journal, None)
            await asyncio.to_thread(
                store.keep_witness, witness.journal, witness.model_dump(mode="json")
            )
        except (JournalError, KeyStoreError) as exc:
            log.error("the journal's head could not be witnessed: %s", exc)
            return self.witness
        if self.feed is not None:
            self.feed.publish_witness(witness)
        return witness

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
        results = await self.fleet.estop()  # the gates first, whatever else fails
        failed = {r: str(e) for r, e in results.items() if e is not None}
        if self.controller is not None:
            try:
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
            except JournalError as exc:  # a journal that fails must not hide the e-stop
                log.error("the e-stop could not be journaled: %s", exc)

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


def _check_journal(path: Path, store: KeyStore, scenario: str) -> None:
    """Refuse an existing journal with a bad record anywhere (a bad middle record is never
    appended to) or an end its witness says was cut off."""
    if not path.exists():
        return
    with Journal.open(path, store.signing_key(), genesis={"scenario": scenario}, check="full") as j:
        check_not_cut(j, store)


def _describe(exc: BaseException) -> str:
    """One line: the project's errors say it themselves; anything else is named by type."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, project_errors()):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
