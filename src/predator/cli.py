"""The ``predator`` command: a thin adapter over the library.

User errors (bad data, bad options, unknown strategy) print one line and exit 2;
nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from predator import __version__

__all__ = ["main"]

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error the user can fix; printed as one line."""


def _parse_pairs(
    option: str, items: Sequence[str], *, form: str = "NAME=VALUE", empty_value: bool = False
) -> dict[str, str]:
    """``K=V`` option values as a dict; a malformed one is a one-line user error."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not (empty_value or value.strip()):
            raise UserError(f"{option} expects {form}, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _parse_params(items: Sequence[str]) -> dict[str, str]:
    return _parse_pairs("--param", items, form="key=value", empty_value=True)


def _add_params_and_allocations(parser: argparse.ArgumentParser) -> None:
    """``--param`` and ``--allocation``, as every run command takes them."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="strategy parameter; with several strategies, NAME.K=V targets one",
    )
    parser.add_argument(
        "--allocation",
        action="append",
        default=[],
        metavar="NAME=F",
        help="share of the cash for a strategy (default: an equal split)",
    )


def _add_fixed_commissions(parser: argparse.ArgumentParser) -> None:
    """``--commission-fixed`` and ``--commission-per-unit``."""
    parser.add_argument("--commission-fixed", default="0", metavar="X", help="cash per order")
    parser.add_argument("--commission-per-unit", default="0", metavar="X", help="cash per unit")


def _add_journal_options(parser: argparse.ArgumentParser) -> None:
    """``--journal`` and ``--postmortems``, as every run command takes them."""
    parser.add_argument("--journal", default=None, metavar="PATH", help="SQLite journal file")
    parser.add_argument(
        "--postmortems",
        default=None,
        metavar="DIR",
        help="write a post-mortem per incident here (default with --journal: "
        "JOURNAL.postmortems/, only when something halted)",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predator",
        description="Predator trading operations platform.",
    )
    parser.add_argument("--version", action="version", version=f"predator {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    bt = commands.add_parser(
        "backtest",
        help="run a strategy on OHLCV bars through the paper exchange",
        description="Run a strategy on OHLCV bars: risk, execution, paper exchange, "
        "portfolio, double-entry ledger and journal, exactly.",
    )
    bt.add_argument("--data", required=True, metavar="FILE", help="OHLCV CSV (optionally .gz)")
    bt.add_argument(
        "--strategy",
        required=True,
        action="append",
        metavar="NAME",
        help="built-in (sma_cross, ema_cross, flood) or path/to/file.py[:Class]; "
        "repeat to run several side by side, each with its own capital pool",
    )
    _add_params_and_allocations(bt)
    bt.add_argument(
        "--risk-config",
        default=None,
        metavar="FILE",
        help="risk configuration (TOML; see docs/risk.example.toml); default: the backtest profile",
    )
    bt.add_argument("--cash", default="10000", help="starting cash (default 10000)")
    bt.add_argument(
        "--commission", default="0", metavar="F", help="fraction of notional, e.g. 0.002"
    )
    _add_fixed_commissions(bt)
    bt.add_argument("--spread-bps", default="0", metavar="BPS", help="full bid-ask spread")
    bt.add_argument("--slippage-bps", default="0", metavar="BPS", help="taker slippage")
    bt.add_argument(
        "--fill",
        default="next-open",
        choices=["next-open", "close"],
        help="market orders fill at the next bar's open (default) or this bar's close",
    )
    bt.add_argument(
        "--sizing",
        default="all-in",
        metavar="SPEC",
        help="default order size: all-in, units:N or fraction:F (default all-in)",
    )
    bt.add_argument("--symbol", default=None, help="instrument symbol (default: from file name)")
    bt.add_argument(
        "--size-precision",
        type=int,
        default=0,
        metavar="N",
        help="decimals of order quantities (default 0: whole units)",
    )
    bt.add_argument(
        "--keep-open",
        action="store_true",
        help="leave the last position open instead of closing it at the end",
    )
    _add_journal_options(bt)
    bt.add_argument(
        "--profit-allocation",
        action="append",
        default=[],
        metavar="RULE=F",
        help="split realized net profit, e.g. debt_repayment=0.7 operational=0.3",
    )
    bt.add_argument("--json", action="store_true", help="print one JSON object")

    st = commands.add_parser(
        "status",
        help="the unified safety status recorded in a journal",
        description="Breakers, kill switches, trading states and limit usage, as the "
        "journal last recorded them; kill switches rebuilt from the journal's events.",
    )
    st.add_argument("--journal", required=True, metavar="PATH", help="SQLite journal file")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    _add_journal_commands(commands)
    _add_book_commands(commands)
    _add_campaign_command(commands)
    _add_replay_command(commands)
    pm = commands.add_parser(
        "postmortem",
        help="write a post-mortem (markdown + JSON) for every halt in a journal",
        description="For each kill switch, breaker opening, halt, strategy failure or "
        "protection lock: the chain of reasons, the timeline, state before and after, "
        "and what resumed trading; plus an index.md.",
    )
    pm.add_argument("--journal", required=True, metavar="PATH", help="SQLite file or journal URL")
    pm.add_argument("--out", required=True, metavar="DIR", help="directory for the reports")
    pm.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _run_backtest(args: argparse.Namespace) -> int:
    from predator.market import DataFormatError, load_bars
    from predator.node import Backtest, BacktestConfig, BacktestError
    from predator.strategy import StrategyError

    if args.size_precision < 0 or args.size_precision > 12:
        raise UserError(f"--size-precision must be within 0..12, got {args.size_precision}")
    specs = _strategy_specs(args.strategy, _parse_params(args.param), args.allocation)
    risk = _load_risk(args.risk_config)
    config = BacktestConfig(
        strategy=specs[0].strategy,
        params=dict(specs[0].params),
        strategies=specs if len(specs) > 1 else (),
        risk=risk,
        profit_allocation=_parse_pairs("--profit-allocation", args.profit_allocation),
        cash=args.cash,
        commission=args.commission,
        commission_fixed=args.commission_fixed,
        commission_per_unit=args.commission_per_unit,
        spread_bps=args.spread_bps,
        slippage_bps=args.slippage_bps,
        fill=args.fill,
        sizing=args.sizing,
        journal=args.journal,
        finalize=not args.keep_open,
    )
    interactive = sys.stdout.isatty() and not args.json
    try:
        # Validate the strategies before reading data so a typo fails fast.
        from predator.strategy import build_strategy

        for spec in specs:
            build_strategy(spec.strategy, spec.params)
        feed = load_bars(args.data, symbol=args.symbol, size_precision=args.size_precision)
        postmortems = args.postmortems
        if postmortems is None and args.journal is not None:
            postmortems = args.journal + ".postmortems"
        if interactive:
            result = _with_progress(Backtest, feed, config, postmortems)
        else:
            result = Backtest(feed, config, postmortem_dir=postmortems).run()
    except (DataFormatError, BacktestError, StrategyError) as exc:
        raise UserError(str(exc)) from None
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, " + ".join(spec.strategy for spec in specs), feed.format)
    return 0


def _run_status(args: argparse.Namespace) -> int:
    import os

    from predator.core.clock import TimeWarp
    from predator.ledger import Journal
    from predator.risk import EmergencyStop

    if not os.path.isfile(args.journal):
        raise UserError(f"{args.journal}: no such journal")
    journal = Journal(args.journal)
    try:
        records = list(journal.records())
    finally:
        journal.close()
    status = None
    completed = False
    for record in records:
        if record.type == "SafetyStatusReported":
            status = record.payload["status"]
        elif record.type == "RunCompleted":
            completed = True
    restored = EmergencyStop.restore(records, clock=TimeWarp.virtual(0), publish=lambda _e: None)
    halts = [
        {"seq": r.seq, "type": r.type, **{k: v for k, v in r.payload.items() if k != "type"}}
        for r in records
        if r.type
        in ("KillSwitchTripped", "TradingStateChanged", "ExecutionHalted", "StrategyStopped")
    ]
    report = {
        "journal": args.journal,
        "events": len(records),
        "complete": completed,
        "kill_switches_tripped": restored.tripped_scopes(),
        "halts": halts,
        "status": status,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"safety status of {args.journal}")
    table.add_column("item")
    table.add_column("value")
    table.add_row("events", str(len(records)))
    table.add_row("run complete", "yes" if completed else "NO (incomplete journal)")
    table.add_row("kill switches tripped", ", ".join(restored.tripped_scopes()) or "none")
    if status is not None:
        for scope, state in status["trading_state"].items():
            table.add_row(f"trading state {scope}", state)
        for name, breaker in status["breakers"].items():
            table.add_row(f"breaker {name}", f"{breaker['state']} ({breaker['trips']} trips)")
        table.add_row("execution halted", str(status["execution"]["halted"] or "no"))
    for halt in halts:
        table.add_row(f"#{halt['seq']} {halt['type']}", str(halt.get("reason", "")))
    Console().print(table)
    return 0


def _strategy_specs(
    names: Sequence[str], params: dict[str, str], allocations: Sequence[str]
) -> tuple[Any, ...]:
    from predator.node import StrategySpec
    from predator.strategy import StrategyError, resolve_strategy

    try:
        classes = [resolve_strategy(name) for name in names]
    except StrategyError as exc:
        raise UserError(str(exc)) from None
    labels = [cls.name or cls.__name__ for cls in classes]
    per: list[dict[str, str]] = [{} for _ in names]
    for key, value in params.items():
        target, dot, bare = key.rpartition(".")
        if dot and len(names) > 1:
            hits = [i for i, label in enumerate(labels) if label == target]
            if not hits:
                raise UserError(f"--param {key}: no strategy named {target!r} in this run")
            for i in hits:
                per[i][bare] = value
            continue
        wanting = [i for i, cls in enumerate(classes) if key in cls.parameters]
        if len(names) > 1 and wanting:
            for i in wanting:
                per[i][key] = value
        else:
            for i in range(len(names)):
                per[i][key] = value  # the registry reports an unknown parameter clearly
    shares: dict[str, str] = {}
    for item in allocations:
        name, sep, share = item.partition("=")
        if not sep or name not in labels:
            raise UserError(
                f"--allocation expects NAME=F with NAME one of {', '.join(labels)}, got {item!r}"
            )
        shares[name] = share
    return tuple(
        StrategySpec(strategy=name, params=per[i], allocation=shares.get(labels[i]))
        for i, name in enumerate(names)
    )


def _load_risk(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    import tomllib

    from predator.risk.config import ConfigError, RiskConfig

    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"{path}: risk configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from None
    try:
        RiskConfig.from_dict(document, source=path)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    return document


def _with_progress(backtest_cls: Any, feed: Any, config: Any, postmortems: Any = None) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]backtest[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("bars"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(feed.instrument.symbol, total=len(feed))

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return backtest_cls(feed, config, progress=advance, postmortem_dir=postmortems).run()


def _print_summary(summary: dict[str, Any], strategy: str, data_format: str) -> None:
    from rich.console import Console
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} %"

    table = Table(title=f"{strategy} on {summary['symbol']} ({summary['bars']} bars)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("Final equity", f"{summary['final_equity']:,.2f}"),
        ("Return", pct(summary["return_pct"])),
        ("Buy & hold", pct(summary["buy_hold_pct"])),
        ("Trades", str(summary["trades"])),
        ("Win rate", pct(summary["win_rate_pct"])),
        ("Max drawdown", pct(summary["max_drawdown_pct"])),
        ("Exposure time", pct(summary["exposure_pct"])),
        ("Fees", f"{summary['fees']:,.2f}"),
        ("Orders / fills", f"{summary['orders']} / {summary['fills']}"),
        ("Rejections", ", ".join(f"{k}: {v}" for k, v in summary["rejections"].items()) or "none"),
        ("Journal", summary["journal"] or "(in memory)"),
        ("Journal digest", summary["journal_digest"]),
    ]
    if summary.get("postmortems"):
        rows.append(("Post-mortems", summary["postmortems"][-1]))
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``predator`` console script; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "backtest":
            return _run_backtest(args)
        if args.command == "status":
            return _run_status(args)
        if args.command in ("audit", "journal"):
            return _run_journal_command(args)
        if args.command == "postmortem":
            return _run_postmortem(args)
        if args.command == "book":
            return _run_book_check(args)
        if args.command == "campaign":
            return _run_campaign(args)
        if args.command == "replay":
            return _run_replay(args)
    except UserError as exc:
        print(f"predator: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("predator: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return EXIT_USER_ERROR


# -- audit and journal replay (predator.validation) ---------------------------------------
def _add_journal_commands(commands: Any) -> None:
    au = commands.add_parser(
        "audit",
        help="recompute everything from a journal's events and report what disagrees",
        description="Check the hash chain, sequence numbers, coverage (fill -> order -> "
        "risk decision), order states, unique trade ids, the balance equation and PnL. "
        "Exit 0 only when clean, 1 with findings, 2 when the journal cannot be read.",
    )
    au.add_argument("--journal", required=True, metavar="PATH", help="SQLite file or journal URL")
    au.add_argument("--json", action="store_true", help="print one JSON object")
    jr = commands.add_parser("journal", help="work with a journal (replay)")
    actions = jr.add_subparsers(dest="journal_command", metavar="ACTION")
    actions.required = True
    rp = actions.add_parser(
        "replay",
        help="rebuild and print the state a journal leaves behind",
        description="Replay every event: positions, cash, PnL and fees per pool, open "
        "orders, trading states and tripped kill switches.",
    )
    rp.add_argument("--journal", required=True, metavar="PATH", help="SQLite file or journal URL")
    rp.add_argument("--json", action="store_true", help="print one JSON object")


def _run_journal_command(args: argparse.Namespace) -> int:
    from predator.validation import JournalUnreadable, audit_journal, replay_journal

    try:
        if args.command == "audit":
            report = audit_journal(args.journal)
            print(json.dumps(report.to_json()) if args.json else report.render())
            return 0 if report.clean else 1
        state = replay_journal(args.journal)
    except JournalUnreadable as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(state.to_json()) if args.json else state.render())
    return 0


def _run_postmortem(args: argparse.Namespace) -> int:
    from predator.validation import (
        JournalUnreadable,
        build_postmortems,
        read_journal,
        write_postmortems,
    )

    try:
        records = read_journal(args.journal)
    except JournalUnreadable as exc:
        raise UserError(str(exc)) from None
    reports = build_postmortems(records)
    try:
        paths = write_postmortems(records, args.out, reports=reports)
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write the post-mortems ({exc.strerror})") from None
    if args.json:
        incidents = [
            {"seq": r.incident.seq, "type": r.incident.type, "summary": r.summary()}
            for r in reports
        ]
        print(json.dumps({"out": args.out, "incidents": incidents, "index": str(paths[-1])}))
    else:
        for report in reports:
            print(report.summary())
        print(f"{len(reports)} post-mortems in {paths[-1]}")
    return 0


# -- book check (predator.market L2 replay) -----------------------------------------------
def _add_book_commands(commands: Any) -> None:
    bk = commands.add_parser("book", help="work with level-2 order book captures")
    actions = bk.add_subparsers(dest="book_command", metavar="ACTION")
    actions.required = True
    ck = actions.add_parser(
        "check",
        help="rebuild the book from Binance captures and compare it with bookTicker",
        description="Rebuild the order book from a Binance websocket capture (snapshot + "
        "depth diffs under Binance's sync rules; later files continue earlier ones) and "
        "compare its best bid/ask, price and size, with every bookTicker the book reached. "
        "Exit 0 with no mismatch, 1 with mismatches, 2 when the input cannot be read.",
    )
    ck.add_argument("files", nargs="+", metavar="FILE", help="hftbacktest *.jsonl.gz captures")
    ck.add_argument("--json", action="store_true", help="print one JSON object")


def _run_book_check(args: argparse.Namespace) -> int:
    import time

    from predator.market import DataFormatError
    from predator.market.depth_loader import check_binance_capture, detect_format

    try:
        for path in args.files:
            kind = detect_format(path)
            if kind != "binance-capture":
                raise UserError(
                    f"{path}: a {kind} file has no bookTicker stream to check against; "
                    "book check reads Binance websocket captures (hftbacktest *.jsonl.gz)"
                )
        started = time.perf_counter()
        report = check_binance_capture(args.files)
        seconds = time.perf_counter() - started
    except DataFormatError as exc:
        raise UserError(str(exc)) from None
    result = report.to_json()
    details = result.pop("mismatch_details")
    result["first_mismatch"] = details[0] if details else None
    result["mismatch_details"] = details
    result["seconds"] = round(seconds, 4)
    result["msgs_per_s"] = round(report.messages / seconds) if seconds > 0 else None
    if args.json:
        print(json.dumps(result))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"book check: {report.symbol} ({report.market})")
        table.add_column("item")
        table.add_column("value", justify="right")
        for key in ("files", "messages", "snapshots", "diffs_applied", "diffs_dropped",
                    "chain_checked", "tickers", "trades", "checks", "mismatches", "gaps",
                    "valid_at_end", "msgs_per_s"):  # fmt: skip
            value = result[key]
            table.add_row(key, str(len(value) if key == "files" else value))
        Console().print(table)
        for detail in details[:5]:
            print(
                f"mismatch {detail['file']}:{detail['line']} update {detail['update_id']}: "
                f"book {detail['book']} vs bookTicker {detail['ticker_update_id']} "
                f"{detail['ticker']}"
            )
    return 1 if report.mismatches else 0


# -- L2 replay (predator.node.l2_run) -------------------------------------------------------
def _add_replay_command(commands: Any) -> None:
    rp = commands.add_parser(
        "replay",
        help="run a strategy on level-2 captures through the L2 paper exchange",
        description="Replay Binance websocket captures (snapshot + depth diffs, bookTicker, "
        "trades; later files continue earlier ones) through the whole order path: "
        "strategy, risk, execution, the L2 paper exchange (queue positions, latency), "
        "portfolio, double-entry ledger and journal, exactly.",
    )
    rp.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="FILE",
        help="hftbacktest *.jsonl.gz capture; repeat for continuation files, in order",
    )
    rp.add_argument(
        "--strategy",
        required=True,
        action="append",
        metavar="NAME",
        help="built-in (market_maker, ...) or path/to/file.py[:Class]; repeat to run "
        "several side by side, each with its own capital pool",
    )
    _add_params_and_allocations(rp)
    rp.add_argument("--risk-config", default=None, metavar="FILE", help="risk configuration (TOML)")
    rp.add_argument("--cash", default="10000", help="starting cash in the quote currency")
    rp.add_argument(
        "--commission", default="0", metavar="F", help="taker fee, fraction of notional"
    )
    rp.add_argument(
        "--maker-fee",
        default=None,
        metavar="F",
        help="fee of fills that rested, fraction of notional (negative: rebate; "
        "default: --commission)",
    )
    _add_fixed_commissions(rp)
    rp.add_argument(
        "--latency",
        default="none",
        metavar="SPEC",
        help="none (default), MS, constant:ENTRY_MS[,RESPONSE_MS[,MARKET_DATA_MS]] or "
        "lognormal:MEDIAN_MS[,SIGMA[,MARKET_DATA_MEDIAN_MS]] (seeded by --seed)",
    )
    rp.add_argument("--seed", type=int, default=0, metavar="N", help="seed of random latency")
    rp.add_argument(
        "--queue-model",
        default="risk_averse",
        metavar="MODEL",
        help="queue position of resting orders: risk_averse (default), prob_power[:N], prob_log",
    )
    rp.add_argument("--symbol", default=None, help="instrument symbol (default: the stream's)")
    rp.add_argument("--tick-size", default=None, metavar="P", help="price step (default: the data)")
    rp.add_argument("--lot-size", default=None, metavar="Q", help="size step (default: the data)")
    rp.add_argument(
        "--sizing",
        default="all-in",
        metavar="SPEC",
        help="default order size: all-in, units:N or fraction:F (default all-in)",
    )
    rp.add_argument(
        "--equity-interval-ms",
        type=int,
        default=1000,
        metavar="MS",
        help="equity curve sampling interval, in milliseconds of data time (default 1000)",
    )
    rp.add_argument(
        "--keep-open",
        action="store_true",
        help="leave orders working and positions open at the end instead of closing them",
    )
    _add_journal_options(rp)
    rp.add_argument("--json", action="store_true", help="print one JSON object")


def _run_replay(args: argparse.Namespace) -> int:
    from predator.market import DataFormatError
    from predator.node.l2_run import L2Replay, ReplayConfig, ReplayError
    from predator.strategy import StrategyError, build_strategy

    specs = _strategy_specs(args.strategy, _parse_params(args.param), args.allocation)
    config = ReplayConfig(
        strategy=specs[0].strategy,
        params=dict(specs[0].params),
        strategies=specs if len(specs) > 1 else (),
        risk=_load_risk(args.risk_config),
        cash=args.cash,
        commission=args.commission,
        maker_fee=args.maker_fee,
        commission_fixed=args.commission_fixed,
        commission_per_unit=args.commission_per_unit,
        latency=args.latency,
        seed=args.seed,
        queue_model=args.queue_model,
        symbol=args.symbol,
        tick_size=args.tick_size,
        lot_size=args.lot_size,
        sizing=args.sizing,
        equity_interval_ms=args.equity_interval_ms,
        journal=args.journal,
        finalize=not args.keep_open,
    )
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    postmortems = args.postmortems
    if postmortems is None and args.journal is not None:
        postmortems = args.journal + ".postmortems"
    interactive = sys.stdout.isatty() and not args.json
    try:
        for spec in specs:  # a typo fails before any data is read
            build_strategy(spec.strategy, spec.params)
        if interactive:
            result = _replay_with_progress(args.data, config, postmortems)
        else:
            result = L2Replay(args.data, config, postmortem_dir=postmortems).run()
    except (DataFormatError, ReplayError, StrategyError) as exc:
        raise UserError(str(exc)) from None
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    from rich.console import Console
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} %"

    strategy = " + ".join(spec.strategy for spec in specs)
    table = Table(
        title=f"{strategy} on {summary['symbol']} ({summary['events']:,} L2 events, "
        f"{summary['data_seconds']:,.0f} s)"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("Final equity", f"{summary['final_equity']:,.2f}"),
        ("Return", pct(summary["return_pct"])),
        ("Buy & hold", pct(summary["buy_hold_pct"])),
        ("Trades", str(summary["trades"])),
        ("Max drawdown", pct(summary["max_drawdown_pct"])),
        ("Fees", f"{summary['fees']:,.2f}"),
        ("Orders / fills", f"{summary['orders']} / {summary['fills']}"),
        ("Maker / taker fills", f"{summary['maker_fills']} / {summary['taker_fills']}"),
        ("Rejections", ", ".join(f"{k}: {v}" for k, v in summary["rejections"].items()) or "none"),
        ("Depth gaps", str(summary["data_gaps"])),
        ("Journal", summary["journal"] or "(in memory)"),
        ("Journal digest", summary["journal_digest"]),
    ]
    if summary.get("postmortems"):
        rows.append(("Post-mortems", summary["postmortems"][-1]))
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    return 0


def _replay_with_progress(paths: list[str], config: Any, postmortems: Any) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from predator.node.l2_run import L2Replay

    with Progress(
        TextColumn("[bold]replay[/bold]"),
        BarColumn(),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=None)

        def advance(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return L2Replay(paths, config, progress=advance, postmortem_dir=postmortems).run()


if __name__ == "__main__":
    sys.exit(main())


# -- campaigns (predator.campaign) ----------------------------------------------------------
def _add_campaign_command(commands: Any) -> None:
    cp = commands.add_parser(
        "campaign",
        help="run the whole system under chaos for simulated days; pass/fail gates",
        description="Two engines of strategies on real BTCUSDT 1-minute bars "
        "(block-bootstrapped to the campaign's length), the campaign risk profile, the "
        "chaos engine and an automated operator; prints the gate scorecard. Exit 0 pass, "
        "1 fail, 2 user error. Every failure prints the command that reproduces it.",
    )
    cp.add_argument("--days", type=int, default=30, metavar="N", help="simulated days (30)")
    cp.add_argument(
        "--chaos",
        default="medium",
        metavar="LEVEL|FILE",
        help="none, light, medium (default), heavy, extreme, or a chaos TOML file",
    )
    cp.add_argument("--seed", type=int, default=1, metavar="N", help="campaign seed (1)")
    cp.add_argument(
        "--data", metavar="FILE", help="OHLCV 1-minute bars (default: the bundled BTCUSDT file)"
    )
    cp.add_argument("--out", metavar="DIR", help="journal, post-mortems, JSON and HTML reports")
    cp.add_argument("--json", action="store_true", help="print one JSON object")
    cp.add_argument(
        "--replay",
        action="store_true",
        help="re-run the campaign recorded in --out DIR (its config comes from there) and "
        "check it reaches the same journal digest, verdict and failures",
    )
    cp.add_argument("--seeds", metavar="A..B", help="a sweep: one campaign per seed (A..B or A,B)")
    cp.add_argument("--workers", type=int, default=1, metavar="N", help="sweep processes (1)")


def _run_campaign(args: argparse.Namespace) -> int:
    import os

    from predator.campaign import CampaignConfig, CampaignError

    if args.replay and args.seeds:
        raise UserError("--replay re-runs one seed; give --seed, not --seeds")
    config = CampaignConfig(
        days=args.days, chaos=args.chaos, seed=args.seed, data=args.data, out_dir=args.out
    )
    expected = None
    try:
        if args.replay:
            if args.out is None:
                raise UserError(
                    "--replay re-runs a recorded campaign: give --out DIR, the directory "
                    "a campaign wrote (its campaign.json)"
                )
            recorded = os.path.join(args.out, "campaign.json")
            if not os.path.isfile(recorded):
                raise UserError(f"{recorded}: no recorded campaign to replay")
            config, expected = _recorded_campaign(recorded, args.out)
        config.validated()
        if args.seeds:
            return _run_campaign_sweep(config, args)
        result = _campaign_with_progress(config, interactive=sys.stdout.isatty() and not args.json)
    except CampaignError as exc:
        raise UserError(str(exc)) from None
    summary = result.summary()
    if expected is not None:
        summary["replay"] = {"expected_digest": expected, "same": expected == result.journal_digest}
    if args.json:
        print(json.dumps(summary))
    else:
        _print_scorecard(result, expected)
    if expected is not None and expected != result.journal_digest:
        return 1
    return 0 if result.passed else 1


def _recorded_campaign(path: str, out: str) -> tuple[Any, str]:
    import msgspec

    from predator.campaign import CampaignConfig, CampaignError

    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        config = msgspec.convert(document["config"], CampaignConfig)
        digest = str(document["journal_digest"])
    except (OSError, ValueError, KeyError, msgspec.ValidationError) as exc:
        raise CampaignError(f"{path}: not a campaign report ({exc})") from None
    return msgspec.structs.replace(config, out_dir=out), digest


def _campaign_with_progress(config: Any, *, interactive: bool) -> Any:
    import time

    from predator.campaign import Campaign

    if not interactive:
        return Campaign(config).run()
    from datetime import UTC, datetime

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]campaign[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("bars {task.fields[status]}"),
        transient=True,
    ) as bar:
        task = bar.add_task(f"seed {config.seed}", total=config.bars, status="")

        def advance(done: int, total: int, stats: dict[str, Any]) -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            day = datetime.fromtimestamp(stats["ts"] / 1e9, tz=UTC).strftime("%Y-%m-%d")
            status = (
                f"| {day} | {stats['events'] / elapsed:,.0f} events/s | "
                f"{stats['incidents']} incidents | {stats['crashes']} crashes"
            )
            bar.update(task, completed=done, total=total, status=status)

        return Campaign(config, progress=advance).run()


def _print_scorecard(result: Any, expected: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    config = result.config
    console = Console()
    table = Table(
        title=f"campaign: {config.days} days, chaos {config.chaos}, seed {config.seed} "
        f"-> {result.verdict}"
    )
    table.add_column("gate")
    table.add_column("status")
    table.add_column("detail")
    colours = {"PASS": "green", "FAIL": "bold red", "SKIP": "dim"}
    for gate in result.gates:
        status = f"[{colours[gate.status]}]{gate.status}[/]"
        table.add_row(gate.name, status, gate.detail)
    console.print(table)
    metrics = result.metrics
    drawdown = metrics["max_drawdown_pct"].get("total")
    console.print(
        f"uptime {metrics['uptime_pct']} %, kill switches {metrics['kill_switch_trips']}, "
        f"crashes {metrics['crashes']}, faults {metrics['faults_injected']}, "
        f"MTTR {metrics['mttr_s']} s, max drawdown {drawdown} %, "
        f"journal {result.journal_events} events, digest {result.journal_digest}"
    )
    if expected is not None:
        same = "same" if expected == result.journal_digest else f"DIFFERENT (recorded {expected})"
        console.print(f"replay: {same} journal digest")
    for gate in result.failures():
        where = f" (journal seq {gate.first_seq})" if gate.first_seq is not None else ""
        console.print(f"[bold red]FAIL[/] {gate.name}{where}: {gate.detail}", markup=True)
        for line in gate.evidence:
            console.print(f"    {line}", markup=False, highlight=False)
    if result.fatal:
        console.print(f"fatal: {result.fatal}", markup=False)
    if not result.passed:
        console.print(f"seed {config.seed}; reproduce: {config.command()}", markup=False)
    if result.files.get("html"):
        console.print(f"report: {result.files['html']}", markup=False)


def _run_campaign_sweep(config: Any, args: argparse.Namespace) -> int:
    import time

    from predator.campaign.sweep import (
        InlineSweepExecutor,
        ProcessPoolSweepExecutor,
        parse_seeds,
        run_sweep,
    )

    seeds = parse_seeds(args.seeds)
    executor: Any = (
        InlineSweepExecutor() if args.workers == 1 else ProcessPoolSweepExecutor(args.workers)
    )
    started = time.perf_counter()
    try:
        sweep = run_sweep(config, seeds, executor)
    finally:
        executor.close()
    wall = time.perf_counter() - started
    summary = sweep.summary()
    summary.update(wall_s=round(wall, 3), seeds_per_s=round(len(seeds) / wall, 3))
    summary.update(days=config.days, chaos=config.chaos, workers=args.workers)
    if args.json:
        print(json.dumps(summary))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"sweep: {len(seeds)} seeds, {config.days} days, chaos {config.chaos}")
        for column in ("seed", "verdict", "failed gates", "uptime %", "kills", "crashes"):
            table.add_column(column)
        for o in sweep.outcomes:
            table.add_row(
                str(o.seed), o.verdict, ", ".join(o.failed_gates) or "-", o.uptime_pct,
                str(o.kill_switch_trips), str(o.crashes),
            )  # fmt: skip
        console = Console()
        console.print(table)
        console.print(
            f"{summary['passed']}/{len(seeds)} passed in {wall:.1f} s wall "
            f"({len(seeds) / wall:.2f} seeds/s, {args.workers} workers)"
        )
        for o in sweep.failing:
            console.print(f"seed {o.seed} FAILED: {o.reproduce}", markup=False)
    return 0 if sweep.verdict == "PASS" else 1
