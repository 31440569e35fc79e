"""Predator: a trading operations platform that proves it survives reality.

See ARCHITECTURE.md for the package map; this top-level package only carries the version.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
