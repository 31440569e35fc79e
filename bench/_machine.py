"""What machine a benchmark ran on: CPU model, Python, platform (for the printed table)."""

from __future__ import annotations

import platform
from pathlib import Path


def machine() -> dict[str, str]:
    """``cpu`` (as /proc/cpuinfo names it), ``python`` and ``platform``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }
