"""Reusable test builders: real data locations, simulated nodes, faulty parts.

Imported by tests, benchmarks and demos only, never by production code.
"""

from predator.testkit.data import shared_data_dir

__all__ = ["shared_data_dir"]
