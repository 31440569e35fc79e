"""Finding strategies by name or file, and validating their parameters.

``sma_cross`` names a built-in; ``path/to/file.py`` or ``path/to/file.py:ClassName``
loads a user's strategy. Mistakes give one clear line with a suggestion.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from predator.strategy.api import Strategy
from predator.strategy.builtins import BUILTINS

__all__ = ["StrategyError", "build_strategy", "resolve_strategy"]


class StrategyError(ValueError):
    """A strategy cannot be found, loaded or configured as asked."""


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def resolve_strategy(spec: str) -> type[Strategy]:
    """The strategy class named by ``spec`` (built-in name or ``file.py[:Class]``)."""
    if spec in BUILTINS:
        return BUILTINS[spec]
    path_text, _, class_name = spec.partition(":")
    if not path_text.endswith(".py"):
        raise StrategyError(
            f"unknown strategy '{spec}'{_suggest(spec, sorted(BUILTINS))} "
            f"(built-ins: {', '.join(sorted(BUILTINS))}; or give path/to/file.py[:Class])"
        )
    path = Path(path_text)
    if not path.is_file():
        raise StrategyError(f"strategy file not found: {path}")
    module_name = f"predator_user_strategy_{abs(hash(path.resolve())) % 10**8}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise StrategyError(f"cannot load strategy file {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # user code: report it as one line, not a traceback
        message = " ".join(str(exc).split())  # one line, whatever the exception says
        raise StrategyError(f"{path}: failed to import: {type(exc).__name__}: {message}") from exc
    classes = {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, Strategy) and obj.__module__ == module_name
    }
    if class_name:
        if class_name not in classes:
            hint = _suggest(class_name, sorted(classes))
            raise StrategyError(f"{path}: no Strategy subclass '{class_name}'{hint}")
        return classes[class_name]
    if len(classes) != 1:
        found = ", ".join(sorted(classes)) or "none"
        raise StrategyError(
            f"{path}: expected exactly one Strategy subclass (found: {found}); "
            "name one with file.py:ClassName"
        )
    return next(iter(classes.values()))


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str) or isinstance(default, str):
        return value
    target = type(default)
    try:
        if target is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if target in (int, float):
            return target(value)
    except ValueError:
        raise StrategyError(
            f"parameter '{key}' of strategy '{name}' expects {target.__name__}, got {value!r}"
        ) from None
    return value


def build_strategy(spec: str, params: dict[str, Any] | None = None) -> Strategy:
    """Instantiate the strategy ``spec`` with validated, type-converted parameters."""
    cls = resolve_strategy(spec)
    name = cls.name or cls.__name__
    params = dict(params or {})
    known = cls.parameters
    for key in params:
        if key not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise StrategyError(
                f"unknown parameter '{key}' for strategy '{name}'"
                f"{_suggest(key, sorted(known))} (parameters: {listed})"
            )
    values = {key: _coerce(name, key, value, known[key]) for key, value in params.items()}
    strategy = cls(**values)
    try:
        strategy.check_parameters()
    except ValueError as exc:
        raise StrategyError(f"strategy '{name}': {exc}") from None
    return strategy
