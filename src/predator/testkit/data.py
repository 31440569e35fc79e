"""Where the shared real-market data files live, for tests, benchmarks and demos.

The data pack sits next to the repository (``<repo>/../shared/data``, documented in its
README); ``PREDATOR_SHARED_DATA`` overrides the location, e.g. on CI.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_data_dir"]

ENV_VAR = "PREDATOR_SHARED_DATA"
"""Environment variable that, when set, names the shared data directory."""


def shared_data_dir() -> Path:
    """The shared data directory; ``FileNotFoundError`` saying where it looked if absent."""
    override = os.environ.get(ENV_VAR)
    if override:
        candidate = Path(override)
    else:
        repo_root = Path(__file__).resolve().parents[3]  # src/predator/testkit/data.py
        candidate = (repo_root / ".." / "shared" / "data").resolve()
    if not candidate.is_dir():
        raise FileNotFoundError(
            f"shared market data directory not found at {candidate}; "
            f"set {ENV_VAR} to the directory holding the data pack (see its README.md)"
        )
    return candidate
