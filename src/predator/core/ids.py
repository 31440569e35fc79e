"""Deterministic identifiers for orders, trades and other journal entities.

Ids are a prefix and a zero-padded counter (``O-000001``): no uuid4, no randomness, so
the same run issues the same ids and a replayed journal can resume the sequence.
"""

from __future__ import annotations

__all__ = ["IdGenerator"]


class IdGenerator:
    """Issues ``{prefix}-{n:0{width}d}`` ids for n = start, start + 1, ...

    Past ``width`` digits the number simply grows (``O-1000000``): ids stay unique,
    though they no longer sort as text. After replaying a journal, :meth:`observe`
    the ids seen so the generator never issues one of them again.

    >>> orders = IdGenerator("O")
    >>> orders.next_id(), orders.next_id()
    ('O-000001', 'O-000002')
    """

    __slots__ = ("_next", "_prefix", "_width")

    def __init__(self, prefix: str, *, width: int = 6, start: int = 1) -> None:
        """Ids ``prefix-…``; ``prefix`` must be non-empty, ``width`` and ``start`` >= 1."""
        if not prefix or any(c.isspace() for c in prefix):
            raise ValueError(f"id prefix must be non-empty without spaces, got {prefix!r}")
        if width < 1:
            raise ValueError(f"id width must be at least 1, got {width}")
        if start < 1:
            raise ValueError(f"ids start at 1 or later, got start={start}")
        self._prefix = prefix
        self._width = width
        self._next = start

    @property
    def prefix(self) -> str:
        """The text before the dash (``"O"`` for order ids)."""
        return self._prefix

    @property
    def last(self) -> int:
        """The number of the last id issued (``start - 1`` before the first)."""
        return self._next - 1

    def next_id(self) -> str:
        """Issue the next id."""
        number = self._next
        self._next = number + 1
        return f"{self._prefix}-{number:0{self._width}d}"

    def number_of(self, identifier: str) -> int | None:
        """The counter inside ``identifier`` if it is one of this generator's form."""
        prefix, dash, digits = identifier.rpartition("-")
        if prefix != self._prefix or not dash or not (digits.isascii() and digits.isdigit()):
            return None
        return int(digits)

    def observe(self, identifier: str) -> None:
        """Make sure ``identifier`` (seen in a replayed journal) is never issued again.

        Ids of another prefix or form are ignored.
        """
        number = self.number_of(identifier)
        if number is not None and number >= self._next:
            self._next = number + 1

    def __repr__(self) -> str:
        return f"IdGenerator({self._prefix!r}, width={self._width}, last={self.last})"
