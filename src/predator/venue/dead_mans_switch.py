"""The venue's dead-man's switch: cancel an account's orders when its heartbeats stop.

Real venues offer it (Binance "countdown cancel all", BitMEX ``cancelAllAfter``): a
client arms a timeout and keeps sending heartbeats; if none arrives within the timeout,
the venue cancels all of the account's open orders, so a crashed or partitioned client
never leaves orders working blind. The L2 paper exchange checks it on every step of
its time; the switch itself only keeps deadlines.
"""

from __future__ import annotations

__all__ = ["DeadMansSwitch"]


class DeadMansSwitch:
    """Deadlines per account, in kernel nanoseconds.

    >>> switch = DeadMansSwitch()
    >>> switch.heartbeat("main", now=0, timeout_ns=10)
    >>> switch.expired(now=9), switch.expired(now=10)
    ([], ['main'])
    >>> switch.armed("main")  # firing disarms it until the next heartbeat
    False
    """

    __slots__ = ("_deadlines", "_timeouts")

    def __init__(self) -> None:
        self._timeouts: dict[str, int] = {}
        self._deadlines: dict[str, int] = {}

    def heartbeat(self, account: str, *, now: int, timeout_ns: int | None = None) -> None:
        """A heartbeat from ``account`` at ``now``; ``timeout_ns`` arms or changes the
        timeout (``0`` disarms). Without a timeout, re-arms the last one, if any."""
        if timeout_ns is not None:
            if timeout_ns < 0:
                raise ValueError(f"timeout must be >= 0 ns, got {timeout_ns}")
            if timeout_ns == 0:
                self.disarm(account)
                return
            self._timeouts[account] = timeout_ns
        timeout = self._timeouts.get(account)
        if timeout is not None:
            self._deadlines[account] = now + timeout

    def disarm(self, account: str) -> None:
        """Stop watching ``account``."""
        self._timeouts.pop(account, None)
        self._deadlines.pop(account, None)

    def armed(self, account: str) -> bool:
        """True while a deadline runs for ``account``."""
        return account in self._deadlines

    def deadline(self, account: str) -> int | None:
        """When ``account``'s orders will be cancelled without a heartbeat."""
        return self._deadlines.get(account)

    def next_deadline(self) -> int | None:
        """The earliest running deadline (``None`` when nothing is armed)."""
        return min(self._deadlines.values(), default=None)

    def expired(self, *, now: int) -> list[str]:
        """Accounts whose deadline is at or before ``now``, sorted; each fires once and
        stays disarmed until its next heartbeat."""
        fired = sorted(a for a, deadline in self._deadlines.items() if deadline <= now)
        for account in fired:
            del self._deadlines[account]
        return fired
