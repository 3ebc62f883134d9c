"""A tiny problem that exercises every kernel, to compile them before timing a solve."""

from __future__ import annotations

from bench import parse_dict
from scheduler.problem import PlanningProblem, build_problem


def tiny_problem() -> PlanningProblem:
    terminal = {"voltage_v": 48.0, "max_current_a": 10.0, "resistance_ohm": 0.02}
    scenario, topology = parse_dict(
        {
            "name": "warmup",
            "frame": {"slots": 4, "slot_ms": 5.0, "guard_us": 100.0},
            "costs": {"loss_price_per_j": 0.001, "delay_price_per_slot": 0.01},
            "routers": [{"id": "A", "ports": 2, "storage_packets": 1}, {"id": "B", "ports": 2}],
            "terminals": [
                {"id": "S", "kind": "source", "at": "A:0", **terminal},
                {"id": "L", "kind": "load", "at": "B:0", **terminal},
            ],
            "lines": [
                {"id": "AB", "a": "A:1", "b": "B:1", "resistance_ohm": 0.1, "max_current_a": 20.0}
            ],
            "transfers": [
                {
                    "id": f"T{i}",
                    "source": "S",
                    "sink": "L",
                    "packets": 2,
                    "voltage_v": 48.0,
                    "current_a": 5.0,
                    "value": 1.0,
                }
                for i in range(3)  # 6 packets, 4 slots: overloaded, so levels run too
            ],
        }
    )
    return build_problem(scenario, topology)
