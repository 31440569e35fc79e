"""Errors raised when market data cannot be read as promised."""

from __future__ import annotations

__all__ = ["DataFormatError"]


class DataFormatError(ValueError):
    """A data file is malformed; the message is one line naming file, line and column.

    ``line`` is 1-based (the header is line 1); ``column`` is the column name (or
    1-based index when the file has no header); ``expected`` says what was wanted.
    """

    def __init__(
        self,
        path: str,
        line: int | None,
        column: str | None,
        expected: str,
        got: str | None = None,
    ) -> None:
        where = path
        if line is not None:
            where += f":{line}"
        if column is not None:
            where += f": column '{column}'"
        message = f"{where}: expected {expected}"
        if got is not None:
            shown = got if len(got) <= 40 else got[:37] + "..."
            message += f", got {shown!r}"
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column
        self.expected = expected
        self.got = got
