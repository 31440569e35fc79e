"""ProfitLossTracker: exact statistics per strategy, engine and total, and profit allocation.

Trades are plain ``ClosedTrade`` values in cents (money_precision 2); allocations post to
a real ``Ledger`` whose balance equation is checked after every step.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.ledger.ledger import Ledger
from predator.portfolio.position import ClosedTrade
from predator.risk.pnl_tracker import (
    UNALLOCATED_PROFIT,
    AllocationRule,
    PnlStats,
    ProfitLossTracker,
    allocation_account,
    split_exact,
)

DEBT_OPS = [AllocationRule("debt_repayment", "0.7"), AllocationRule("operational", "0.3")]


def trade(pnl: int, fees: int = 0, symbol: str = "GOOG", ts: int = 0) -> ClosedTrade:
    """A closed long of one unit whose net PnL is ``pnl`` after ``fees`` (cents)."""
    return ClosedTrade(
        symbol=symbol,
        size=1,
        entry_ts=ts,
        exit_ts=ts + 1,
        entry_price=10_000,
        exit_price=10_000 + pnl + fees,
        gross_pnl=pnl + fees,
        fees=fees,
        pnl=pnl,
    )


def tracker() -> ProfitLossTracker:
    """A tracker in cents with the 70% debt repayment / 30% operational split."""
    return ProfitLossTracker(money_precision=2, allocation_rules=DEBT_OPS)


# -- statistics ---------------------------------------------------------------------------


def test_stats_count_gross_fees_net_wins_and_losses() -> None:
    pnl = tracker()
    for net, fee in [(1_000, 50), (-400, 50), (600, 50), (0, 50), (-200, 25)]:
        pnl.on_trade("sma_cross", "trend", trade(net, fee))

    stats = pnl.strategy("sma_cross")

    assert stats.trades == 5
    assert (stats.wins, stats.losses) == (2, 2)
    assert stats.gross_pnl == 1_225
    assert stats.fees == 225
    assert stats.net_pnl == 1_000
    assert stats.gross_wins == 1_600
    assert stats.gross_losses == 600
    assert stats.win_rate == Fraction(2, 5)
    assert stats.profit_factor == Fraction(8, 3)


def test_profit_factor_and_win_rate_are_none_when_undefined() -> None:
    empty = PnlStats()
    assert empty.win_rate is None
    assert empty.profit_factor is None
    assert empty.roi is None

    pnl = tracker()
    pnl.on_trade("mm", "market_making", trade(300))
    assert pnl.strategy("mm").profit_factor is None  # no losses
    assert pnl.strategy("mm").win_rate == 1


def test_streaks_track_current_and_maximum_runs() -> None:
    pnl = tracker()
    for net in [5, 7, 9, -1, -2, 3, -4, -5, -6, -7, 0, 8]:
        pnl.on_trade("ema_cross", "trend", trade(net))

    stats = pnl.strategy("ema_cross")

    assert stats.max_win_streak == 3
    assert stats.max_loss_streak == 4
    assert (stats.current_win_streak, stats.current_loss_streak) == (1, 0)

    pnl.on_trade("ema_cross", "trend", trade(0))  # break-even ends every streak
    after = pnl.strategy("ema_cross")
    assert (after.current_win_streak, after.current_loss_streak) == (0, 0)


def test_stats_roll_up_per_engine_and_in_total() -> None:
    pnl = tracker()
    pnl.on_trade("sma_cross", "trend", trade(1_000, 10))
    pnl.on_trade("ema_cross", "trend", trade(-300, 10))
    pnl.on_trade("mm", "market_making", trade(200, 5))

    assert pnl.engine("trend").net_pnl == 700
    assert pnl.engine("trend").trades == 2
    assert pnl.engine("market_making").net_pnl == 200
    total = pnl.total()
    assert (total.trades, total.net_pnl, total.fees, total.gross_pnl) == (3, 900, 25, 925)
    assert pnl.engines() == ["market_making", "trend"]
    assert pnl.strategies() == ["ema_cross", "mm", "sma_cross"]
    assert [s for s, _, _ in pnl.trades()] == ["sma_cross", "ema_cross", "mm"]


def test_roi_is_net_pnl_over_capital_per_strategy_engine_and_total() -> None:
    pnl = tracker()
    pnl.set_capital("sma_cross", 100_000)
    pnl.set_capital("ema_cross", 50_000)
    pnl.set_capital("mm", 50_000)
    pnl.on_trade("sma_cross", "trend", trade(5_000))
    pnl.on_trade("ema_cross", "trend", trade(-2_000))
    pnl.on_trade("mm", "market_making", trade(1_000))

    assert pnl.strategy("sma_cross").roi == Fraction(1, 20)
    assert pnl.strategy("ema_cross").roi == Fraction(-1, 25)
    assert pnl.engine("trend").roi == Fraction(3_000, 150_000)
    assert pnl.engine("market_making").capital == 50_000
    assert pnl.total().roi == Fraction(4_000, 200_000)
    assert pnl.strategy("unknown").roi is None


def test_a_strategy_cannot_switch_engines() -> None:
    pnl = tracker()
    pnl.on_trade("sma_cross", "trend", trade(1))
    with pytest.raises(ValueError, match="belongs to one engine"):
        pnl.on_trade("sma_cross", "market_making", trade(1))


def test_negative_capital_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        tracker().set_capital("sma_cross", -1)


# -- export -------------------------------------------------------------------------------


def test_export_is_json_ready_with_money_as_decimal_strings() -> None:
    pnl = tracker()
    pnl.set_capital("sma_cross", 300_000)
    pnl.on_trade("sma_cross", "trend", trade(1_005, 20))
    pnl.on_trade("sma_cross", "trend", trade(-500, 20))

    exported = pnl.export()

    strategy = exported["strategies"]["sma_cross"]
    assert strategy["engine"] == "trend"
    assert strategy["net_pnl"] == "5.05"
    assert strategy["gross_pnl"] == "5.45"
    assert strategy["fees"] == "0.40"
    assert strategy["capital"] == "3000.00"
    assert strategy["win_rate"] == "0.500000"
    assert strategy["profit_factor"] == "2.010000"
    assert strategy["roi"] == "0.001683"  # 505 / 300000 rounded half-even
    assert exported["total"]["net_pnl"] == "5.05"
    assert exported["engines"]["trend"]["trades"] == 2
    assert exported["trades"][1]["pnl"] == "-5.00"
    assert exported["allocation"]["unallocated"] == "5.05"
    assert exported["allocation"]["rules"] == [
        {"name": "debt_repayment", "fraction": "0.700000"},
        {"name": "operational", "fraction": "0.300000"},
    ]
    assert msgspec.json.decode(pnl.to_json()) == exported
    assert "trades" not in pnl.export(include_trades=False)


def test_export_of_an_empty_tracker_shows_zero_and_null() -> None:
    total = tracker().export()["total"]
    assert total["net_pnl"] == "0.00"
    assert total["win_rate"] is None
    assert total["profit_factor"] is None
    assert total["capital"] is None


# -- allocation rules ---------------------------------------------------------------------


def test_rules_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        ProfitLossTracker(
            money_precision=2,
            allocation_rules=[AllocationRule("debt", "0.7"), AllocationRule("ops", "0.2")],
        )
    with pytest.raises(ValueError, match="unique"):
        ProfitLossTracker(
            money_precision=2,
            allocation_rules=[AllocationRule("debt", "0.5"), AllocationRule("debt", "0.5")],
        )


@pytest.mark.parametrize("fraction", ["0", "-0.1", "1.5"])
def test_rule_fraction_must_be_in_zero_one(fraction: str) -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        AllocationRule("debt", fraction)


def test_rule_fraction_must_be_exact_not_float() -> None:
    with pytest.raises(TypeError, match="exact"):
        AllocationRule("debt", 0.7)  # type: ignore[arg-type]
    assert AllocationRule("debt", Decimal("0.7")) == AllocationRule("debt", Fraction(7, 10))


def test_split_gives_the_rounding_remainder_to_the_last_rule() -> None:
    thirds = [AllocationRule(name, Fraction(1, 3)) for name in ("a", "b", "c")]
    assert split_exact(100, thirds) == {"a": 33, "b": 33, "c": 34}
    assert split_exact(1, DEBT_OPS) == {"debt_repayment": 0, "operational": 1}


def test_allocate_posts_an_exact_balanced_transfer() -> None:
    pnl = tracker()
    ledger = Ledger("USD", precision=2)
    pnl.on_trade("sma_cross", "trend", trade(10_001))

    transaction = pnl.allocate(1_000, ledger)

    assert transaction is not None
    assert transaction.ts == 1_000
    assert transaction.reference == "profit_allocation:1"
    assert [(p.account, p.amount) for p in transaction.postings] == [
        ("equity:unallocated_profit", 10_001),
        ("equity:allocated:debt_repayment", -7_000),
        ("equity:allocated:operational", -3_001),
    ]
    ledger.check()
    assert ledger.balance(allocation_account("debt_repayment")) == -7_000
    assert pnl.allocated == 10_001
    assert pnl.unallocated == 0
    assert pnl.allocated_by_rule() == {"debt_repayment": 7_000, "operational": 3_001}
    assert pnl.allocate(1_001, ledger) is None  # nothing new to allocate


def test_losses_reduce_the_unallocated_pool_before_new_allocation() -> None:
    pnl = tracker()
    ledger = Ledger("USD", precision=2)
    pnl.on_trade("sma_cross", "trend", trade(1_000))
    pnl.allocate(1, ledger)
    pnl.on_trade("sma_cross", "trend", trade(-400))

    assert pnl.unallocated == -400
    assert pnl.allocate(2, ledger) is None

    pnl.on_trade("sma_cross", "trend", trade(500))  # wins back 400, 100 is new profit
    transaction = pnl.allocate(3, ledger)

    assert transaction is not None
    assert transaction.postings[0].amount == 100
    assert pnl.allocated == 1_100
    assert ledger.balance(UNALLOCATED_PROFIT) == 1_100


def test_allocate_without_rules_or_with_a_mismatched_ledger_fails() -> None:
    bare = ProfitLossTracker(money_precision=2)
    bare.on_trade("s", "e", trade(100))
    with pytest.raises(ValueError, match="no allocation rules"):
        bare.allocate(0, Ledger("USD", precision=2))
    with pytest.raises(ValueError, match="precision"):
        tracker().allocate(0, Ledger("USD", precision=8))


@st.composite
def rules(draw: st.DrawFn) -> list[AllocationRule]:
    """Two to five rules with random positive exact fractions summing to 1."""
    weights = draw(st.lists(st.integers(1, 1_000), min_size=2, max_size=5))
    total = sum(weights)
    return [AllocationRule(f"rule{n}", Fraction(w, total)) for n, w in enumerate(weights)]


@settings(max_examples=200, deadline=None)
@given(
    rules=rules(),
    steps=st.lists(st.one_of(st.integers(-1_000_000, 1_000_000), st.just("allocate")), max_size=40),
)
def test_allocations_always_sum_to_the_allocated_profit_and_books_balance(
    rules: list[AllocationRule], steps: list[int | str]
) -> None:
    pnl = ProfitLossTracker(money_precision=2, allocation_rules=rules)
    ledger = Ledger("USD", precision=2)
    high_water = 0
    for ts, step in enumerate(steps):
        if step == "allocate":
            transaction = pnl.allocate(ts, ledger)
            high_water = max(high_water, pnl.total().net_pnl)
            if transaction is not None:
                assert sum(p.amount for p in transaction.postings) == 0
                assert all(p.amount for p in transaction.postings)
        else:
            assert isinstance(step, int)
            pnl.on_trade("s", "e", trade(step, ts=ts))
        ledger.check()
        assert pnl.allocated == high_water
        by_rule = pnl.allocated_by_rule()
        assert sum(by_rule.values()) == pnl.allocated
        assert ledger.balance(UNALLOCATED_PROFIT) == pnl.allocated
        for rule in rules:
            assert -ledger.balance(allocation_account(rule.name)) == by_rule[rule.name]
            # Each share is within one unit per allocation of the exact fraction; the
            # last rule also collects the others' rounding remainders.
            bound = len(steps) + 1
            if rule is rules[-1]:
                bound *= len(rules)
            assert abs(by_rule[rule.name] - pnl.allocated * rule.fraction) <= bound
