"""The frame loop's results as MQTT payloads (``router.mqtt``'s models and topics)."""

from __future__ import annotations

from router.controller.loop import Controller
from router.controller.outcome import FrameOutcome
from router.mqtt import (
    Alarm,
    FrameSummary,
    MqttFeed,
    PortTelemetry,
    RouterState,
    StageAccount,
    TransferTelemetry,
)

CRITICAL = {"estop", "commit_failed", "clock_skew", "collision", "router_offline"}
INFO = {"router_answers", "router_back"}  # good news


def publish_frame(feed: MqttFeed, ctl: Controller, o: FrameOutcome, alarms: int) -> None:
    f = ctl.scenario.frame
    feed.publish_frame(
        FrameSummary(
            scenario=ctl.scenario.name,
            frame=o.frame,
            slots=f.slots,
            slot_ms=f.slot_ms,
            packets_planned=o.packets_planned,
            packets_undelivered=o.packets_undelivered,
            packets_delivered=float(o.packets_delivered),
            energy_planned_j=o.energy_planned_j,
            energy_delivered_j=o.energy_delivered_j,
            loss_j=max(0.0, o.loss_j),
            objective=o.objective,
            lower_bound=o.lower_bound,
            gap=o.gap,
            plan_ms=o.plan_ms,
            seal_ms=o.seal_ms,
            upload_ms=o.upload_ms,
            commit_ms=o.commit_ms,
            late_ms=o.late_ms,
            skipped=o.skipped,
            routers_down=o.routers_down,
            alarms=alarms,
            mqtt_dropped=feed.stats.dropped,
        )
    )
    if o.settlement is not None:
        for t in o.settlement.transfers:
            feed.publish_transfer(TransferTelemetry.from_settlement(o.frame, t))
    if o.stage:  # the stage's own account, as journaled
        account = {k: v for k, v in o.stage.items() if k != "stage"}
        feed.publish_stage(StageAccount(stage=o.stage["stage"], frame=o.frame, account=account))
    for rid in ctl.fleet.drivers:
        status = ctl.status.get(rid)
        est = ctl.clocks.estimates.get(rid)
        down = rid in ctl.fleet.down
        feed.publish_router_state(
            RouterState(
                router=rid,
                state="offline" if down or status is None else status.state,  # type: ignore[arg-type]
                frame=None if status is None else status.frame,
                alarms=() if status is None else status.alarms,
                clock_offset_us=None if est is None else est.offset_s * 1e6,
                clock_uncertainty_us=None
                if est is None
                else est.uncertainty_at(est.reference_s) * 1e6,
            )
        )
        meters = ctl.ports.get(rid)
        if meters is None or down:
            continue
        for m in meters.ports:
            feed.publish_port(
                PortTelemetry(
                    router=rid,
                    port=m.port,
                    frame=o.frame,
                    energy_j=ctl.port_delta_j.get(rid, {}).get(m.port, 0.0),
                    voltage_v=m.voltage_v,
                    current_a=m.current_a,
                )
            )


def publish_alarm(feed: MqttFeed, frame: int | None, source: str, code: str, text: str) -> None:
    feed.publish_alarm(
        Alarm(
            frame=frame,
            severity="critical" if code in CRITICAL else "info" if code in INFO else "warning",
            source=source,
            code=code,
            message=text,
        )
    )
