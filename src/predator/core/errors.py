"""Kernel-level errors that user code must not be able to swallow."""

from __future__ import annotations

__all__ = ["KernelFault"]


class KernelFault(BaseException):
    """A failure inside the kernel surfaced through a call made by user code.

    It derives from ``BaseException`` on purpose: a strategy's ``except Exception``
    must not hide an invariant violation or a journal failure that happened while it
    was submitting an order. The original error is ``__cause__``.
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
