"""Seeded random streams, one per component, all derived from the campaign seed.

Each stream is a ``numpy.random.Generator`` whose ``SeedSequence`` spawn key comes from
a BLAKE2b hash of the component's name, so the same (seed, name) gives the same numbers
in any process, and adding a component never shifts the numbers of the others.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["RngStreams"]

_WORDS_PER_NAME = 4  # 128 bits of BLAKE2b per name: collisions are not a concern.


def _name_key(name: str) -> tuple[int, ...]:
    """Stable 32-bit words for ``name`` (never Python's salted ``hash()``)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=4 * _WORDS_PER_NAME).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, len(digest), 4))


class RngStreams:
    """Independent, reproducible random streams named after the components using them.

    ``stream(name)`` returns the same ``Generator`` object every time it is asked for
    the same name (cached), so two call sites of one component share one sequence
    instead of silently replaying the same numbers. A component that needs several
    sequences asks for several names (``"venue.latency"``, ``"venue.fills"``) or takes
    a :meth:`child`.

    Streams use the PCG64 bit generator explicitly, so numpy changing its default
    cannot change a run.

    >>> streams = RngStreams(42)
    >>> a = streams.stream("venue").integers(1_000_000)
    >>> int(a) == int(RngStreams(42).stream("venue").integers(1_000_000))
    True
    """

    __slots__ = ("_key", "_path", "_seed", "_streams")

    def __init__(self, seed: int, *, path: tuple[str, ...] = ()) -> None:
        """Streams for ``seed`` (a non-negative int); ``path`` is set by :meth:`child`."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self._seed = seed
        self._path = path
        self._key: tuple[int, ...] = tuple(w for part in path for w in _name_key(part))
        self._streams: dict[str, np.random.Generator] = {}

    @property
    def seed(self) -> int:
        """The root seed every stream derives from."""
        return self._seed

    @property
    def path(self) -> tuple[str, ...]:
        """The names of the :meth:`child` calls that led here (empty at the root)."""
        return self._path

    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        """A fresh ``SeedSequence`` for ``name`` (to hand to another process or library)."""
        return np.random.SeedSequence(self._seed, spawn_key=self._key + _name_key(name))

    def stream(self, name: str) -> np.random.Generator:
        """The generator of component ``name`` (the same object on every call)."""
        generator = self._streams.get(name)
        if generator is None:
            bits = np.random.PCG64(self.seed_sequence(name))
            generator = self._streams[name] = np.random.Generator(bits)
        return generator

    def child(self, name: str) -> RngStreams:
        """A nested family of streams (``streams.child("chaos").stream("drop")``).

        Its streams are independent of this family's streams, including one called
        ``name``, and equal for equal (seed, path, name).
        """
        return RngStreams(self._seed, path=(*self._path, name))

    def __repr__(self) -> str:
        return f"RngStreams(seed={self._seed}, path={self._path!r})"
