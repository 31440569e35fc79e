"""Finding strategies by name or file, validating their parameters, and parsing sizing."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predator.strategy import (
    BUILTINS,
    EmaCross,
    Flood,
    Sizing,
    SmaCross,
    Strategy,
    StrategyError,
    build_strategy,
    resolve_strategy,
)
from predator.strategy.builtins.market_maker import MarketMaker


def write_strategy(directory: Path, source: str, name: str = "my_strategy.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


ONE_CLASS = """
    from predator.strategy import SmaCross, Strategy

    class Breakout(Strategy):
        parameters = {"lookback": 20, "threshold": 0.5, "enabled": True, "label": "x"}
"""

TWO_CLASSES = """
    from predator.strategy import Strategy

    class Alpha(Strategy):
        pass

    class Beta(Strategy):
        pass
"""


# -- built-ins ----------------------------------------------------------------------------


def test_builtins_are_registered_by_their_names() -> None:
    assert dict(BUILTINS) == {
        "sma_cross": SmaCross,
        "ema_cross": EmaCross,
        "flood": Flood,
        "market_maker": MarketMaker,
    }
    assert resolve_strategy("sma_cross") is SmaCross
    assert resolve_strategy("ema_cross") is EmaCross


def test_unknown_strategy_suggests_the_closest_builtin() -> None:
    with pytest.raises(StrategyError) as excinfo:
        resolve_strategy("smacross")

    message = str(excinfo.value)
    assert "unknown strategy 'smacross'" in message
    assert "did you mean 'sma_cross'" in message
    assert "path/to/file.py" in message


def test_unknown_strategy_without_a_close_match_lists_the_builtins() -> None:
    with pytest.raises(StrategyError) as excinfo:
        resolve_strategy("zzz")

    message = str(excinfo.value)
    assert "did you mean" not in message
    assert "ema_cross, flood, market_maker, sma_cross" in message


def test_unknown_parameter_suggests_the_closest_one_and_lists_them() -> None:
    with pytest.raises(StrategyError) as excinfo:
        build_strategy("sma_cross", {"fats": "5"})

    message = str(excinfo.value)
    assert "unknown parameter 'fats' for strategy 'sma_cross'" in message
    assert "did you mean 'fast'" in message
    assert "(parameters: fast, slow)" in message


def test_parameter_of_the_wrong_type_names_the_expected_type() -> None:
    with pytest.raises(
        StrategyError, match=r"parameter 'fast' of strategy 'sma_cross' expects int, got 'abc'"
    ):
        build_strategy("sma_cross", {"fast": "abc"})


def test_string_parameters_are_converted_to_the_default_type() -> None:
    strategy = build_strategy("sma_cross", {"fast": "5", "slow": "12"})

    assert isinstance(strategy, SmaCross)
    assert (strategy.fast, strategy.slow) == (5, 12)


def test_missing_parameters_take_their_defaults() -> None:
    strategy = build_strategy("ema_cross", {"fast": 3})

    assert (strategy.fast, strategy.slow) == (3, 26)


# -- user files ---------------------------------------------------------------------------


def test_file_with_one_strategy_class_loads_it(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, ONE_CLASS)

    cls = resolve_strategy(str(path))

    # SmaCross imported into the file is not the file's own strategy
    assert cls.__name__ == "Breakout"
    assert issubclass(cls, Strategy)


def test_file_with_class_name_loads_that_class(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, TWO_CLASSES)

    assert resolve_strategy(f"{path}:Beta").__name__ == "Beta"
    assert resolve_strategy(f"{path}:Alpha").__name__ == "Alpha"


def test_file_with_two_classes_and_no_class_name_asks_for_one(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, TWO_CLASSES)

    with pytest.raises(StrategyError) as excinfo:
        resolve_strategy(str(path))

    message = str(excinfo.value)
    assert message.startswith(f"{path}: expected exactly one Strategy subclass")
    assert "(found: Alpha, Beta)" in message
    assert "file.py:ClassName" in message


def test_file_with_no_strategy_class_says_none_found(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, "class NotAStrategy:\n    pass\n")

    with pytest.raises(
        StrategyError, match=r"expected exactly one Strategy subclass \(found: none\)"
    ):
        resolve_strategy(str(path))


def test_unknown_class_name_in_file_suggests_the_closest(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, TWO_CLASSES)

    with pytest.raises(StrategyError) as excinfo:
        resolve_strategy(f"{path}:Alpah")

    assert str(excinfo.value) == f"{path}: no Strategy subclass 'Alpah'; did you mean 'Alpha'?"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("import no_such_module_for_predator_tests\n", "ModuleNotFoundError"),
        ("def broken(:\n    pass\n", "SyntaxError"),
        ("raise RuntimeError('bad config')\n", "RuntimeError"),
    ],
)
def test_file_that_fails_to_import_gives_one_line_error(
    tmp_path: Path, source: str, error: str
) -> None:
    path = write_strategy(tmp_path, source)

    with pytest.raises(StrategyError) as excinfo:
        resolve_strategy(str(path))

    message = str(excinfo.value)
    assert message.startswith(f"{path}: failed to import: {error}")
    assert "\n" not in message


def test_import_error_with_a_multiline_message_still_gives_one_line(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, "raise RuntimeError('line one\\nline two')\n")

    with pytest.raises(StrategyError) as excinfo:
        resolve_strategy(str(path))

    assert "\n" not in str(excinfo.value)


def test_missing_strategy_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"

    with pytest.raises(StrategyError, match="strategy file not found"):
        resolve_strategy(str(missing))


def test_user_strategy_parameters_are_coerced_by_default_type(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, ONE_CLASS)

    strategy = build_strategy(
        str(path), {"lookback": "7", "threshold": "0.25", "enabled": "off", "label": "y"}
    )

    assert strategy.lookback == 7  # type: ignore[attr-defined]
    assert strategy.threshold == 0.25  # type: ignore[attr-defined]
    assert strategy.enabled is False  # type: ignore[attr-defined]
    assert strategy.label == "y"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("key", "value", "kind"), [("enabled", "maybe", "bool"), ("threshold", "x", "float")]
)
def test_user_strategy_parameter_of_the_wrong_type_is_rejected(
    tmp_path: Path, key: str, value: str, kind: str
) -> None:
    path = write_strategy(tmp_path, ONE_CLASS)

    with pytest.raises(
        StrategyError, match=f"parameter '{key}' of strategy 'Breakout' expects {kind}"
    ):
        build_strategy(str(path), {key: value})


# -- sizing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all-in", Sizing("fraction", Decimal(1))),
        ("units:10", Sizing("units", Decimal(10))),
        ("units:0.001", Sizing("units", Decimal("0.001"))),
        ("fraction:0.5", Sizing("fraction", Decimal("0.5"))),
        ("fraction:1", Sizing("fraction", Decimal(1))),
        ("  units:2  ", Sizing("units", Decimal(2))),
    ],
)
def test_sizing_parses_the_accepted_forms(text: str, expected: Sizing) -> None:
    assert Sizing.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "all_in",
        "units",
        "units:",
        "units:0",
        "units:-1",
        "units:abc",
        "fraction:0",
        "fraction:1.5",
        "fraction:-0.5",
        "lots:3",
    ],
)
def test_sizing_rejects_other_forms_listing_the_accepted_ones(text: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        Sizing.parse(text)

    assert "expected all-in, units:N (N > 0) or fraction:F (0 < F <= 1)" in str(excinfo.value)


@pytest.mark.parametrize("text", ["units:nan", "fraction:nan", "units:snan"])
def test_sizing_rejects_nan_with_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="invalid sizing"):
        Sizing.parse(text)


def test_sizing_rejects_infinite_units() -> None:
    with pytest.raises(ValueError, match="invalid sizing"):
        Sizing.parse("units:inf")


@given(
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**9), places=6),
)
def test_any_positive_units_parse_to_that_amount(value: Decimal) -> None:
    assert Sizing.parse(f"units:{value}") == Sizing("units", value)


@given(
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(1), places=6),
)
def test_any_fraction_in_zero_to_one_parses_to_that_fraction(value: Decimal) -> None:
    assert Sizing.parse(f"fraction:{value}") == Sizing("fraction", value)
