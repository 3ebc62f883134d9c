"""A router's register file: Modbus-style reads and writes onto the firmware model.

Every address comes from the register map; exception replies come from the firmware
description (``device.toml`` ``[replies]``). Protocol servers (Modbus TCP / RTU, the
framed protocol) call ``read`` / ``write`` / ``read_coils`` / ``write_coil`` with the
true time the request arrived, after the twin has run the bus up to that instant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from firmware_bridge.registers import Block, register_map
from sim_hw.description import DeviceDescription
from sim_hw.router import CommandRefused, RouterModel


class DeviceException(Exception):
    """Answer the request with this Modbus exception code."""

    def __init__(self, code: int):
        self.code = code


class RouterFront:
    def __init__(
        self,
        model: RouterModel,
        desc: DeviceDescription,
        key_epoch: int,
        diagnostics: Callable[[], Mapping[str, int]],
    ) -> None:
        self.model, self.desc, self.key_epoch = model, desc, key_epoch
        self.diagnostics = diagnostics
        self.map = register_map()
        self.blocks = [b for b in self.map.blocks if b.table == "holding"]
        self.window = self.map.block("upload_window")
        self.top = self.window.end  # reads below this (reserved ones read 0) are mapped
        self._coils = {f.address: f.name for f in self.map.block("control").fields}
        self._commands = {b.start: b for b in self.map.blocks if b.name.startswith("cmd_")}

    def _refuse(self, condition: str) -> DeviceException:
        return DeviceException(self.desc.reply_code(condition))

    # --- holding registers ------------------------------------------------------------

    def read(self, addr: int, count: int, t: float) -> list[int]:
        if not 1 <= count <= 2048:
            raise self._refuse("too_many_registers")
        end = addr + count
        twin = self.map.block("twin_diagnostics")
        if not (end <= self.top or (twin.start <= addr and end <= twin.end)):
            raise self._refuse("unmapped_address")
        out = [0] * count
        for block in self.blocks:
            if block.end <= addr or block.start >= end:
                continue
            if block is self.window:
                lo, hi = max(addr, block.start), min(end, block.end)
                data = self.model.read_window(2 * (lo - block.start), 2 * (hi - lo))
                for i in range(hi - lo):
                    out[lo - addr + i] = int.from_bytes(data[2 * i : 2 * i + 2], "big")
                continue
            for instance in range(block.repeat):
                base = block.start + instance * block.stride
                if base >= end or base + block.size <= addr:
                    continue
                values = self._values(block, instance, t)
                for f in block.fields:
                    regs = f.encode(values.get(f.name, 0)) if f.access != "w" else [0] * f.registers
                    for i, v in enumerate(regs):
                        a = f.address + instance * block.stride + i
                        if addr <= a < end:
                            out[a - addr] = v
        return out

    def write(self, addr: int, values: Sequence[int], t: float) -> None:
        end = addr + len(values)
        if not 1 <= len(values) <= 2048:
            raise self._refuse("too_many_registers")
        w = self.window
        if w.start <= addr and end <= w.end:
            data = b"".join(v.to_bytes(2, "big") for v in values)
            self.model.write_window(2 * (addr - w.start), data)
            return
        command = self._commands.get(addr)
        if command is not None and end == command.end:
            return self._command(command, values, t)
        if any(b.start < end and addr < b.end for b in self._commands.values()):
            raise self._refuse("partial_field")  # a command is one write of its whole block
        config = self.map.block("config")
        fields = [f for f in config.fields if f.address < end and f.address + f.registers > addr]
        if not fields or addr < config.start or end > config.end:
            raise self._refuse("read_only" if addr < self.top else "unmapped_address")
        if fields[0].address < addr or fields[-1].address + fields[-1].registers > end:
            raise self._refuse("partial_field")
        if any(f.access == "r" for f in fields):
            raise self._refuse("read_only")
        decoded = {f.name: int(f.decode(values[f.address - addr :])) for f in fields}
        for name, value in decoded.items():
            if (
                name == "upload_page"
                and value * self.map.params["window_entries"]
                >= (self.map.params["bank_entries_max"])
            ):
                raise self._refuse("bad_value")
            self.model.config[name] = value

    def _command(self, block: Block, values: Sequence[int], t: float) -> None:
        """An authenticated command: the registers before the tag are the signed body."""
        tag_field = block.fields[-1]
        n = tag_field.address - block.start
        body = b"".join(v.to_bytes(2, "big") for v in values[:n])
        tag = b"".join(v.to_bytes(2, "big") for v in values[n:])
        fields = {
            f.name: int(f.decode(values[f.address - block.start :])) for f in block.fields[:-1]
        }
        try:
            self.model.command(block.name.removeprefix("cmd_"), fields, body, tag, t)
        except CommandRefused:
            raise self._refuse("command_refused") from None

    # --- coils ------------------------------------------------------------------------

    def read_coils(self, addr: int, count: int, t: float) -> list[bool]:
        if addr + count > len(self._coils) or count < 1:
            raise self._refuse("unmapped_address")
        return [
            self._coils[a] == "estop" and self.model.halted == "fault"
            for a in range(addr, addr + count)
        ]

    def write_coil(self, addr: int, value: bool, t: float) -> None:
        name = self._coils.get(addr)
        if name is None:
            raise self._refuse("unmapped_address")
        if not value:
            return
        if name == "estop":
            self.model.halt(t, "fault")

    # --- register values --------------------------------------------------------------

    def _values(self, block: Block, instance: int, t: float) -> dict[str, int | float]:
        m, rmap = self.model, self.map
        name = block.name
        if name == "identity":
            return {
                "magic": rmap.magic,
                "map_version": rmap.version,
                "router_wire_id": m.wire_id,
                "port_count": m.ports,
                "storage_places": m.storage,
                "bank_entries_max": rmap.params["bank_entries_max"],
                "window_entries": rmap.params["window_entries"],
                "firmware_version": self.desc.firmware_version,
                "key_epoch": m.headers.epoch or self.key_epoch,
            }
        if name == "status":
            state, frame, slot = m.state(t)
            staged = m.staged
            last = staged or m.live
            return {
                "state": rmap.code("state", state),
                "alarms": sum(1 << rmap.bits["alarms"][a] for a in m.alarms),
                "frame": frame,
                "slot": 0xFFFF if slot is None else slot,
                "live_bank": m.live_bank,
                "staging": rmap.code("staging", m.staging),
                "staged_frame": staged.frame if staged else 0,
                "commit_status": rmap.code("commit_status", m.commit_status),
                "arm_status": rmap.code("arm_status", m.arm_status),
                "commit_accepted": last.accepted if last else 0,
                "commit_refused": last.refused if last else 0,
                "frames_completed": m.frames_completed,
            }
        if name == "counters":
            return {f.name: m.counters[f.name] & 0xFFFFFFFF for f in block.fields}
        if name == "config":
            return dict(m.config)
        if name == "session":
            owner = m.owner
            return {
                "owner_session": owner.session if owner else 0,
                "owner_seq": owner.seq if owner else 0,
                "challenge": m.challenge,
                "replay_mark": m.headers.last_committed or 0,
                "watchdog_timeout_ms": m.watchdog_ms if owner else m.default_watchdog_ms,
            }
        if name == "clock":
            if m.live is not None and not m.live.finished:
                start = m.live.start_us
            else:
                start = m.staged.start_us if m.staged and m.staging == "armed" else 0
            return {"router_clock_us": m.clock.read(t), "frame_start_us": start}
        if name == "meters":
            if instance >= m.ports:
                return {}
            e_in, e_out, n_in, n_out, v, i = m.meters[instance]
            return {
                "energy_in_nj": round(e_in * 1e9),
                "energy_out_nj": round(e_out * 1e9),
                "packets_in": n_in,
                "packets_out": n_out,
                "last_voltage": max(0.0, min(v, 655.35)),
                "last_current": max(0.0, min(i, 655.35)),
            }
        limit = rmap.params["attribution_records"]
        records = list(m.attribution.items())[:limit]
        latched_frame, latched = m.latched
        latched_records = list(latched.items())[:limit]
        if name == "attribution":
            return {"attribution_count": len(records)}
        if name == "frame_attribution":
            return {"latched_frame": latched_frame, "latched_count": len(latched_records)}
        if name in ("attribution_records", "frame_attribution_records"):
            rows = records if name == "attribution_records" else latched_records
            if instance >= len(rows):
                return {}
            (sink, transfer), (n, energy) = rows[instance]
            return {
                "sink": sink,
                "transfer": transfer,
                "packets": int(n),
                "energy_nj": round(energy * 1e9),
            }
        if name == "twin_diagnostics":
            return {
                **self.diagnostics(),
                "timing_shortfall_nj": round(m.latched_shortfall * 1e9),
                "latched_start_ns": max(0, round(m.latched_start * 1e3)),
            }
        return {}
