"""The machine line every benchmark prints under its table: the numbers are this
machine's, and the ratios are what carries over to another."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe(*packages: str, note: str = "") -> str:
    """``2 CPUs (nproc), <model>; Python 3.11.7, numpy 2.1.3, ...`` (no final stop)."""
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    parts = [f"{os.cpu_count()} CPUs (nproc), {cpu_model()}"]
    if note:
        parts.append(note)
    parts.append(", ".join([f"Python {platform.python_version()}", *versions]))
    return "; ".join(parts)
