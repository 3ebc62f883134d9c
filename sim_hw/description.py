"""The twin's firmware description (``device.toml``) as a frozen, typed model."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources

from pydantic import BaseModel, ConfigDict

from firmware_bridge.registers import register_map


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Defaults(_Model):
    watchdog_timeout_ms: int
    clock_offset_us: int
    clock_drift_ppm: float


class Timing(_Model):
    turnaround_us: int
    serial_idle_flush_ms: float


class Limits(_Model):
    trip_margin: float


class DeviceDescription(_Model):
    version: int
    firmware_version: int
    defaults: Defaults
    timing: Timing
    limits: Limits
    replies: dict[str, str]

    def reply_code(self, condition: str) -> int:
        """The Modbus exception code the firmware answers for ``condition``."""
        return register_map().exceptions[self.replies[condition]]


@functools.cache
def device_description() -> DeviceDescription:
    text = (resources.files("sim_hw") / "device.toml").read_text(encoding="utf-8")
    desc = DeviceDescription.model_validate(tomllib.loads(text))
    unknown = set(desc.replies.values()) - set(register_map().exceptions)
    if unknown:
        raise ValueError(f"device.toml: unknown exception names {sorted(unknown)}")
    return desc
