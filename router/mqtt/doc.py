"""The generated parts of ``docs/mqtt.md``: the topic table and every payload's schema
and example, made from ``topics.TOPICS`` and the payload models so the page cannot drift
from the code (``tests/test_mqtt_doc.py`` fails until it is regenerated). The block
markers and the rewriting are shared with docs/headers.md (``firmware_bridge.docblocks``).

    python -m router.mqtt.doc docs/mqtt.md
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bench.models import Transfer
from firmware_bridge.docblocks import block, refresh
from router.journal.witness import Witness
from router.mqtt.models import (
    Alarm,
    CommandReply,
    EstopCommand,
    FrameSummary,
    PortTelemetry,
    RouterState,
    StageAccount,
    TransferCommand,
    TransferTelemetry,
)
from router.mqtt.topics import QOS, TOPICS

__all__ = ["EXAMPLES", "GENERATED", "block", "main"]  # block: for the doc test

PREFIX = "ppr/<scenario>"
_T = datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)

EXAMPLES: dict[str, BaseModel] = {
    "frame": FrameSummary(
        scenario="bench-4", frame=1042, time=_T, slots=200, slot_ms=5.0, packets_planned=240,
        packets_undelivered=0, packets_delivered=240.0, energy_planned_j=503.7,
        energy_delivered_j=503.1, loss_j=9.86, objective=1.10625, lower_bound=1.10488,
        gap=0.0012, plan_ms=54.6, seal_ms=3.1, upload_ms=21.4, commit_ms=4.2, late_ms=0.0,
        skipped=False,
        routers_down=(), alarms=0, mqtt_dropped=0,
    ),
    "router_state": RouterState(
        router="R2", state="running", time=_T, frame=1042, alarms=(), clock_offset_us=-183.4,
        clock_uncertainty_us=12.0,
    ),
    "port": PortTelemetry(
        router="R2", port=1, frame=1042, time=_T, energy_j=-141.1, voltage_v=47.9,
        current_a=-8.0,
    ),
    "transfer": TransferTelemetry(
        transfer="S1-B2", frame=1042, time=_T, seller="S1", buyer="B2", packets_planned=60,
        packets_delivered=60.0, energy_planned_j=134.358, energy_delivered_j=134.1,
        shortfall_j=0.0, compensation=0.0,
    ),
    "stage": StageAccount(
        stage="mec", frame=1042, time=_T,
        account={
            "allocation_ms": 1.21, "mean_satisfaction": 1.0, "min_satisfaction": 1.0,
            "servers": {
                "MEC1": {
                    "source": "PV1", "transfer": "mec-MEC1", "demand_j": 20.0, "sent_j": 20.13,
                    "allocated_j": 20.0, "packets": 15, "planned_j": 21.04,
                    "delivered_j": 21.04, "satisfaction": 1.0,
                },
            },
        },
    ),
    "alarm": Alarm(
        time=_T, frame=1042, severity="warning", source="R3", code="router_offline",
        message="R3 did not answer 3 heartbeats; dropped from frame 1043",
    ),
    "estop": EstopCommand(id="op-17", reason="smoke in rack 2"),
    "cmd_transfer": TransferCommand(
        id="op-18",
        transfer=Transfer(
            id="X1", source="PV1", sink="MEC3", packets=20, voltage_v=48.0, current_a=8.0,
            value=1.0,
        ),
    ),
    "reply": CommandReply(
        id="op-18", command="transfer", ok=False, time=_T,
        error="transfers[X1].sink: unknown terminal 'MEC9'",
    ),
    "journal": Witness(
        journal="5d1c" * 16, records=4211, head="9e07" * 16, frame=1043,
        time="2025-03-14T09:26:53.589+00:00", signature="c4a1" * 32,
    ),
}  # fmt: skip


def render_topics() -> str:
    rows = [
        "| topic | direction | retained | QoS | payload |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, spec in TOPICS.items():
        direction = "controller publishes" if spec.direction == "publish" else "controller listens"
        payload = f"[`{spec.model.__name__}`](#{name.replace('_', '-')})" if spec.model else "text"
        retain = "yes" if spec.retain else "no"
        rows.append(
            f"| `{PREFIX}/{spec.pattern}` | {direction} | {retain} | {QOS} | {payload}: "
            f"{spec.summary} |"
        )
    return "\n".join(rows) + "\n"


def render_payloads() -> str:
    out: list[str] = []
    for name, spec in TOPICS.items():
        out.append(f'<a id="{name.replace("_", "-")}"></a>\n### `{PREFIX}/{spec.pattern}`\n')
        if spec.model is None:
            out.append("Plain text, not JSON: `online` or `offline` (as dashboards expect).\n")
            continue
        out.append(f"`{spec.model.__name__}`: {_doc(spec.model)}\n")
        schema = spec.model.model_json_schema()
        out.append(_table(schema, schema.get("$defs", {})))
        for ref in sorted(schema.get("$defs", {})):
            nested = schema["$defs"][ref]
            meaning = nested.get("description", "as in the scenario file (docs/design.md)")
            out.append(f"`{ref}`: {meaning.splitlines()[0]}\n")
            out.append(_table(nested, schema["$defs"]))
        example = EXAMPLES[name].model_dump_json(indent=2, exclude_defaults=False)
        out.append(f"```json\n{example}\n```\n")
    return "\n".join(out)


def _doc(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().splitlines()[0]


def _table(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = ["| field | type | required | meaning |", "| --- | --- | --- | --- |"]
    for field, prop in schema["properties"].items():
        if field in required:
            need = "yes"
        elif "default" in prop:
            need = f"no (default `{json.dumps(prop['default'])}`)"
        else:
            need = "no (default: the time of publishing)"
        rows.append(f"| `{field}` | {_type(prop)} | {need} | {prop.get('description', '')} |")
    return "\n".join(rows) + "\n"


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"object `{prop['$ref'].rsplit('/', 1)[-1]}`"
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        items = prop.get("items", {})
        return f"array of {_type(items)}" if items else "array"
    if kind == "null":
        return "`null`"
    text = {"number": "number", "integer": "integer", "boolean": "boolean"}.get(kind, kind)
    if prop.get("format") == "date-time":
        text = "string (ISO 8601 time)"
    limits = [
        f"{sym} {prop[key]}"
        for key, sym in (
            ("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
            ("exclusiveMaximum", "<"), ("maxLength", "length ≤"),
        )
        if key in prop
    ]  # fmt: skip
    if "pattern" in prop:
        limits.append(f"matching `{prop['pattern']}`")
    return f"{text} ({', '.join(limits)})" if limits else text


GENERATED = {"topics": render_topics, "payloads": render_payloads}


def main(argv: list[str]) -> int:
    for name in argv:
        path = Path(name)
        path.write_text(refresh(path.read_text(encoding="utf-8"), GENERATED), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
