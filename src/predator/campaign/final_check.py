"""The campaign's own last word on consistency: the node's books against the venue's.

Independent of the node's reconciliation (which a test can switch off), it compares at
the end of the run every pool's cash and position with its venue sub-account, and the
venue's trades with the fills execution applied: each difference is an unresolved
execution/portfolio mismatch, and fails the campaign.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from predator.node.kernel import Kernel

__all__ = ["final_check"]


def final_check(kernel: Kernel) -> list[str]:
    """Every difference between the node's pools and the venue, one line each."""
    exchange = kernel.exchange
    symbol = kernel.instrument.symbol
    problems: list[str] = []
    for name, portfolio in sorted(kernel.portfolios.items()):
        account = portfolio.account
        if account not in exchange.accounts:
            problems.append(f"pool {name}: the venue has no account {account!r}")
            continue
        cash, positions = exchange.account_snapshot(account)
        if cash != portfolio.cash:
            problems.append(f"pool {name}: cash {portfolio.cash} here, {cash} at the venue")
        ours, theirs = portfolio.position_quantity(symbol), positions.get(symbol, 0)
        if ours != theirs:
            problems.append(f"pool {name}: position {ours} here, {theirs} at the venue")
    applied = sorted(t for order in kernel.execution.orders.values() for t in order.trade_ids)
    venue = sorted(fill.trade_id for fill in exchange.trade_log)
    if len(applied) != len(set(applied)):
        problems.append(f"{len(applied) - len(set(applied))} venue trades applied twice")
    missing = sorted(set(venue) - set(applied))
    if missing:
        problems.append(f"{len(missing)} venue trades never applied (first {missing[0]})")
    unknown = sorted(set(applied) - set(venue))
    if unknown:
        problems.append(f"{len(unknown)} applied trades the venue never made (first {unknown[0]})")
    return problems
