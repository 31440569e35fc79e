"""Specs for the EmergencyStop: halts at once, explains itself, resumes only on approval.

Driven by a virtual TimeWarp; events go to a list (or a real Journal) so every assertion
is about what was recorded.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predator.core.clock import NS_PER_SECOND, TimeWarp
from predator.core.events import Event
from predator.ledger.journal import Journal
from predator.risk.config import KillSwitchSection
from predator.risk.emergency_stop import (
    NS_PER_DAY,
    ApprovalRefused,
    EmergencyActionFailed,
    EmergencyStop,
    InvalidScope,
    KillScope,
    KillSwitchReset,
    KillSwitchTripped,
    KillTrigger,
    NotTripped,
    OperatorApproved,
    RestoreFailed,
    ResumeNotApproved,
)

START_NS = 1_700_000_000 * NS_PER_SECOND  # 2023-11-14T22:13:20Z
GLOBAL = KillScope.global_()
TREND = KillScope.engine("trend")
SMA = KillScope.strategy("sma")


class Rig:
    """An EmergencyStop on a virtual clock, recording its events and the actions it ran."""

    def __init__(self, config: KillSwitchSection | None = None) -> None:
        self.clock = TimeWarp.virtual(START_NS)
        self.events: list[Event] = []
        self.canceled: list[str] = []
        self.flattened: list[str] = []
        self.stop = EmergencyStop(
            self.clock,
            self.events.append,
            config=config,
            on_trip=[self.canceled.append],
            on_flatten=[self.flattened.append],
        )

    def of(self, kind: type[Event]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


class EquityConfig:
    """Kill-switch configs used by the loss checks."""

    peak_20 = KillSwitchSection()
    daily_5 = KillSwitchSection(daily_loss_limit=Decimal("0.05"))
    flatten = KillSwitchSection(flatten_on_trip=True)


# -- scopes ---------------------------------------------------------------------------------
def test_scope_helpers_build_and_check_scope_strings() -> None:
    assert (GLOBAL, TREND, SMA) == ("global", "engine:trend", "strategy:sma")
    assert KillScope.parse("engine:trend") == ("engine", "trend")
    assert KillScope.parse("global") == ("global", None)
    for bad in ("", "engine:", "strategy: x", "desk:fx", "GLOBAL", "engine"):
        with pytest.raises(InvalidScope, match="invalid kill-switch scope"):
            KillScope.validate(bad)


# -- tripping -------------------------------------------------------------------------------
def test_trip_halts_the_scope_and_records_who_why_and_when() -> None:
    rig = Rig()
    rig.clock.advance(5 * NS_PER_SECOND)
    assert rig.stop.trip(TREND, "venue rejects everything", actor="alice") is True
    assert rig.events == [
        KillSwitchTripped(
            ts=START_NS + 5 * NS_PER_SECOND,
            scope=TREND,
            reason="venue rejects everything",
            actor="alice",
            trigger="manual",
            flatten=False,
        )
    ]
    assert KillSwitchTripped.journaled
    assert rig.canceled == [TREND]
    assert rig.flattened == []
    assert rig.stop.is_tripped(TREND)
    assert rig.stop.blocks("sma", "trend") == (
        "engine:trend tripped by alice (manual): venue rejects everything"
    )
    assert rig.stop.blocks("sma", "market_making") is None


def test_blocks_checks_global_then_engine_then_strategy() -> None:
    rig = Rig()
    rig.stop.trip(SMA, "decayed", trigger="invariant_violation")
    assert (
        rig.stop.blocks("sma", "trend")
        == "strategy:sma tripped by system (invariant_violation): decayed"
    )
    assert rig.stop.blocks("ema", "trend") is None
    rig.stop.trip(GLOBAL, "reconciliation mismatch", trigger=KillTrigger.RECONCILIATION_MISMATCH)
    assert rig.stop.blocks("ema", "anything") == (
        "global tripped by system (reconciliation_mismatch): reconciliation mismatch"
    )
    assert not rig.stop.is_tripped(TREND)  # a global trip is its own scope
    assert rig.stop.tripped_scopes() == [GLOBAL, SMA]


def test_trip_is_idempotent_while_tripped() -> None:
    rig = Rig()
    assert rig.stop.trip(GLOBAL, "first") is True
    assert rig.stop.trip(GLOBAL, "second") is False
    assert len(rig.of(KillSwitchTripped)) == 1
    assert rig.canceled == [GLOBAL]
    trip = rig.stop.trip_of(GLOBAL)
    assert trip is not None and trip.reason == "first"


def test_asking_to_flatten_an_already_tripped_scope_escalates_it() -> None:
    rig = Rig()
    rig.stop.trip(GLOBAL, "halt")
    assert rig.stop.trip(GLOBAL, "close everything", actor="bob", flatten=True) is True
    assert [event.flatten for event in rig.of(KillSwitchTripped)] == [False, True]
    assert rig.flattened == [GLOBAL]
    assert rig.stop.trip(GLOBAL, "again", flatten=True) is False


def test_a_trip_is_explained_even_when_the_caller_gives_no_words() -> None:
    rig = Rig()
    rig.stop.trip(GLOBAL, "  ", actor="")
    (event,) = rig.of(KillSwitchTripped)
    assert (event.reason, event.actor) == ("no reason given", "unknown")


def test_a_failing_action_is_recorded_and_the_halt_still_happens() -> None:
    rig = Rig()
    ran: list[str] = []

    def broken_cancel_all(scope: str) -> None:
        raise ConnectionError("venue unreachable")

    rig.stop.on_trip.insert(0, broken_cancel_all)
    rig.stop.on_trip.append(ran.append)
    assert rig.stop.trip(GLOBAL, "operator panic", actor="alice", flatten=True) is True
    assert rig.stop.is_tripped(GLOBAL)
    assert ran == [GLOBAL]  # the actions after the broken one still ran
    assert rig.flattened == [GLOBAL]
    (failure,) = rig.of(EmergencyActionFailed)
    assert failure.scope == GLOBAL
    assert "broken_cancel_all" in failure.action
    assert failure.error == "ConnectionError: venue unreachable"
    assert rig.stop.failures == [failure]
    assert rig.stop.snapshot().failures == (failure,)


def test_an_invalid_scope_is_refused_loudly() -> None:
    rig = Rig()
    with pytest.raises(InvalidScope):
        rig.stop.trip("engin:trend", "typo")
    assert rig.events == []


# -- resuming -------------------------------------------------------------------------------
def test_reset_without_approval_is_refused_with_a_clear_message() -> None:
    rig = Rig()
    rig.stop.trip(GLOBAL, "loss too large", trigger="loss_from_peak")
    with pytest.raises(ResumeNotApproved) as caught:
        rig.stop.reset(GLOBAL, "alice", "looks fine now")
    message = str(caught.value)
    assert "cannot reset global" in message
    assert "2023-11-14T22:13:20.000000000Z" in message
    assert "loss_from_peak by system: loss too large" in message
    assert "approve('global', ...)" in message
    assert rig.stop.is_tripped(GLOBAL)
    assert rig.of(KillSwitchReset) == []


def test_approval_then_reset_resumes_and_records_the_approval_it_used() -> None:
    rig = Rig()
    rig.stop.trip(TREND, "flood of orders")
    rig.clock.advance(60 * NS_PER_SECOND)
    approval = rig.stop.approve(TREND, "alice", "bug fixed in deploy 42")
    assert rig.stop.is_tripped(TREND)  # approval alone resumes nothing
    rig.clock.advance(NS_PER_SECOND)
    reset = rig.stop.reset(TREND, "bob", "resuming after fix")
    assert approval == OperatorApproved(
        ts=START_NS + 60 * NS_PER_SECOND,
        scope=TREND,
        actor="alice",
        reason="bug fixed in deploy 42",
    )
    assert reset == KillSwitchReset(
        ts=START_NS + 61 * NS_PER_SECOND,
        scope=TREND,
        actor="bob",
        reason="resuming after fix",
        approval_ts=approval.ts,
    )
    assert rig.events[-2:] == [approval, reset]
    assert not rig.stop.is_tripped(TREND)
    assert rig.stop.blocks("sma", "trend") is None


def test_time_alone_never_resumes() -> None:
    rig = Rig()
    rig.stop.trip(GLOBAL, "halt")
    rig.clock.advance(365 * NS_PER_DAY)
    assert rig.stop.is_tripped(GLOBAL)
    assert rig.stop.blocks("sma", "trend") is not None


def test_an_approval_does_not_survive_a_later_trip_or_a_reset() -> None:
    rig = Rig()
    rig.stop.trip(GLOBAL, "halt")
    rig.stop.approve(GLOBAL, "alice", "ok")
    rig.stop.trip(GLOBAL, "flatten now", flatten=True)  # a new trip after the approval
    with pytest.raises(ResumeNotApproved):
        rig.stop.reset(GLOBAL, "alice", "resume")
    rig.stop.approve(GLOBAL, "alice", "ok, really")
    rig.stop.reset(GLOBAL, "alice", "resume")
    rig.stop.trip(GLOBAL, "again")
    with pytest.raises(ResumeNotApproved):  # the earlier approval was used up
        rig.stop.reset(GLOBAL, "alice", "resume")


def test_approvals_need_a_tripped_scope_a_named_operator_and_a_reason() -> None:
    rig = Rig()
    with pytest.raises(NotTripped, match="cannot approve global: it is not tripped"):
        rig.stop.approve(GLOBAL, "alice", "ok")
    with pytest.raises(NotTripped, match="cannot reset engine:trend"):
        rig.stop.reset(TREND, "alice", "ok")
    rig.stop.trip(GLOBAL, "halt")
    with pytest.raises(ApprovalRefused, match="named operator"):
        rig.stop.approve(GLOBAL, "system", "auto-resume")
    with pytest.raises(ApprovalRefused, match="needs a reason"):
        rig.stop.approve(GLOBAL, "alice", " ")
    assert rig.of(OperatorApproved) == []


# -- automatic triggers ---------------------------------------------------------------------
def test_loss_is_measured_from_the_peak_not_from_the_starting_capital() -> None:
    rig = Rig(EquityConfig.peak_20)
    assert rig.stop.check_loss(100_000) is False
    assert rig.stop.check_loss(200_000) is False
    # 15 % below the peak, still 70 % above the starting capital: no trip.
    assert rig.stop.check_loss(170_000) is False
    # Exactly 20 % below the peak (and well above the start): trips.
    assert rig.stop.check_loss(160_000) is True
    (trip,) = rig.of(KillSwitchTripped)
    assert trip.scope == GLOBAL
    assert trip.trigger == "loss_from_peak"
    assert trip.actor == "system"
    assert trip.flatten is False
    assert trip.reason == "equity 160000 is 20.00% below its peak 200000 (limit 20.00%)"
    assert rig.canceled == [GLOBAL]
    assert rig.stop.check_loss(100_000) is False  # already tripped: no second event
    assert len(rig.of(KillSwitchTripped)) == 1


def test_loss_check_uses_exact_arithmetic_at_the_boundary() -> None:
    rig = Rig(KillSwitchSection(max_loss_from_peak=Decimal("0.1")))
    rig.stop.check_loss(1_000_000_007)
    assert rig.stop.check_loss(900_000_007) is False  # a hair above peak x 0.9
    assert rig.stop.check_loss(900_000_006) is True  # peak x 0.9 = 900_000_006.3


def test_automatic_trips_flatten_when_configured() -> None:
    rig = Rig(EquityConfig.flatten)
    rig.stop.check_loss(100)
    rig.stop.check_loss(50)
    assert rig.of(KillSwitchTripped)[0].flatten is True
    assert rig.flattened == [GLOBAL]


def test_non_positive_equity_always_trips() -> None:
    rig = Rig()
    assert rig.stop.check_loss(0) is True
    assert "equity 0 is not positive" in rig.of(KillSwitchTripped)[0].reason


def test_resetting_global_rebases_the_peak_on_the_accepted_equity() -> None:
    rig = Rig(EquityConfig.peak_20)
    rig.stop.check_loss(200_000)
    rig.stop.check_loss(150_000)
    rig.stop.approve(GLOBAL, "alice", "loss accepted, strategy replaced")
    rig.stop.reset(GLOBAL, "alice", "resume")
    assert rig.stop.check_loss(150_000) is False  # not re-tripped by the old peak
    assert rig.stop.snapshot().peak_equity == 150_000
    assert rig.stop.check_loss(120_000) is True  # 20 % below the new peak


def test_daily_loss_is_measured_from_the_start_of_the_utc_day() -> None:
    rig = Rig(EquityConfig.daily_5)
    day = (START_NS // NS_PER_DAY + 1) * NS_PER_DAY  # next UTC midnight
    assert rig.stop.check_daily_loss(100_000, day + 60 * NS_PER_SECOND) is False
    assert rig.stop.check_daily_loss(95_001, day + 3_600 * NS_PER_SECOND) is False
    # Next day: the day's start moves to the first equity of that day.
    assert rig.stop.check_daily_loss(95_001, day + NS_PER_DAY) is False
    assert rig.stop.check_daily_loss(90_251, day + NS_PER_DAY + 1) is False
    assert rig.stop.check_daily_loss(90_250, day + NS_PER_DAY + 2) is True
    (trip,) = rig.of(KillSwitchTripped)
    assert trip.trigger == "daily_loss"
    assert trip.ts == day + NS_PER_DAY + 2
    assert "below the UTC day's start 95001" in trip.reason


def test_daily_loss_does_nothing_without_a_limit() -> None:
    rig = Rig()
    rig.stop.check_daily_loss(100_000)
    assert rig.stop.check_daily_loss(10) is False
    assert rig.events == []


def test_snapshot_reports_tripped_scopes_and_approvals_in_order() -> None:
    rig = Rig(EquityConfig.daily_5)
    rig.stop.check_loss(1_000)
    rig.stop.trip(SMA, "decayed")
    rig.stop.trip(TREND, "flood", actor="alice")
    rig.stop.approve(TREND, "bob", "fixed")
    snapshot = rig.stop.snapshot()
    assert [status.scope for status in snapshot.tripped] == [TREND, SMA]
    assert snapshot.tripped[0].approved_by == "bob"
    assert snapshot.tripped[0].approval_ts == START_NS
    assert snapshot.tripped[1].approved_by is None
    assert snapshot.peak_equity == 1_000
    assert snapshot.max_loss_from_peak == "0.20"
    assert snapshot.daily_loss_limit == "0.05"
    assert msgspec.json.decode(msgspec.json.encode(snapshot))["tripped"][0]["scope"] == TREND


# -- restoring ------------------------------------------------------------------------------
def journaled_stop(journal: Journal, clock: TimeWarp) -> EmergencyStop:
    def publish(event: Event) -> None:
        journal.append(event)

    return EmergencyStop.restore(journal.records(), clock=clock, publish=publish)


def test_a_node_that_went_down_halted_comes_back_halted(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    clock = TimeWarp.virtual(START_NS)
    with Journal(path) as journal:
        stop = journaled_stop(journal, clock)
        stop.trip(GLOBAL, "reconciliation mismatch", trigger="reconciliation_mismatch")
        stop.trip(TREND, "flood", actor="alice")
        stop.approve(TREND, "bob", "fixed")
        stop.trip(SMA, "decayed")
        stop.approve(SMA, "bob", "fixed")
        stop.reset(SMA, "bob", "resume")

    clock.advance(600 * NS_PER_SECOND)  # the node restarts later
    with Journal(path) as journal:
        stop = journaled_stop(journal, clock)
        assert stop.tripped_scopes() == [TREND, GLOBAL]  # sorted
        assert stop.blocks("ema", "other") is not None
        assert stop.snapshot().tripped[0].approved_by == "bob"
        with pytest.raises(ResumeNotApproved):
            stop.reset(GLOBAL, "alice", "restarted, so resume")
        stop.reset(TREND, "bob", "resume after restart")  # the journaled approval counts
        stop.approve(GLOBAL, "alice", "venue reconciled by hand")
        stop.reset(GLOBAL, "alice", "resume")

    with Journal(path) as journal:
        stop = journaled_stop(journal, clock)
        assert stop.tripped_scopes() == []
        assert stop.blocks("ema", "other") is None


def test_restore_accepts_payload_dicts_and_skips_other_events() -> None:
    rig = Rig()
    rig.stop.trip(GLOBAL, "halt")
    rig.stop.trip(TREND, "flood")
    rig.stop.approve(TREND, "bob", "fixed")
    payloads = [msgspec.to_builtins(event) for event in rig.events]
    payloads.insert(1, {"type": "OrderFilled", "ts": 1, "quantity": 3})
    payloads.insert(0, {"ts": 1})  # untyped: not ours
    restored = EmergencyStop.restore(payloads, clock=rig.clock, publish=rig.events.append)
    assert restored.snapshot().tripped == rig.stop.snapshot().tripped
    restored_from_events = EmergencyStop.restore(rig.events, clock=rig.clock, publish=print)
    assert restored_from_events.snapshot().tripped == rig.stop.snapshot().tripped


def test_a_journaled_reset_without_approval_does_not_resume_on_restore() -> None:
    trip = KillSwitchTripped(
        ts=1, scope=GLOBAL, reason="halt", actor="system", trigger="manual", flatten=False
    )
    forged = KillSwitchReset(ts=2, scope=GLOBAL, actor="mallory", reason="x", approval_ts=0)
    clock = TimeWarp.virtual(START_NS)
    stop = EmergencyStop.restore([trip, forged], clock=clock, publish=print)
    assert stop.is_tripped(GLOBAL)
    (anomaly,) = stop.snapshot().anomalies
    assert "reset of global" in anomaly and "stays tripped" in anomaly


def test_a_malformed_kill_switch_record_stops_the_restore() -> None:
    clock = TimeWarp.virtual(START_NS)
    with pytest.raises(RestoreFailed, match=r"record 1: malformed KillSwitchTripped"):
        EmergencyStop.restore(
            [{"type": "KillSwitchTripped", "ts": 1, "scope": GLOBAL}], clock=clock, publish=print
        )


# -- the resumption property ----------------------------------------------------------------
SCOPES = (GLOBAL, TREND, SMA)
Step = tuple[str, int, int, bool]
steps = st.lists(
    st.tuples(
        st.sampled_from(("trip", "approve", "reset")),
        st.integers(0, len(SCOPES) - 1),
        st.sampled_from((0, 0, 1, NS_PER_SECOND)),  # often no time passes at all
        st.booleans(),
    ),
    max_size=40,
)


def approved_since_latest_trip(events: list[Event], scope: str) -> bool:
    approved = False
    for event in events:
        if isinstance(event, KillSwitchTripped) and event.scope == scope:
            approved = False
        elif isinstance(event, OperatorApproved) and event.scope == scope:
            approved = True
    return approved


@settings(max_examples=300, deadline=None)
@given(steps)
def test_a_scope_is_never_untripped_without_an_approval_after_its_latest_trip(
    plan: list[Step],
) -> None:
    rig = Rig()
    for action, index, delta, flag in plan:
        scope = SCOPES[index]
        rig.clock.advance(delta)
        before = set(rig.stop.tripped_scopes())
        events_before = list(rig.events)
        try:
            if action == "trip":
                rig.stop.trip(scope, "chaos", flatten=flag)
            elif action == "approve":
                rig.stop.approve(scope, "alice", "checked")
            else:
                rig.stop.reset(scope, "alice", "resume")
        except (ResumeNotApproved, NotTripped):
            assert rig.events == events_before  # a refused request records nothing
        after = set(rig.stop.tripped_scopes())
        for resumed in before - after:
            assert approved_since_latest_trip(events_before, resumed)
            assert isinstance(rig.events[-1], KillSwitchReset)
        assert after >= before - {scope}  # only the addressed scope can resume
    # The journal tells the same story: restoring from it gives the same state.
    payloads = [msgspec.json.decode(msgspec.json.encode(event)) for event in rig.events]
    restored = EmergencyStop.restore(payloads, clock=rig.clock, publish=print)
    assert restored.snapshot().tripped == rig.stop.snapshot().tripped
