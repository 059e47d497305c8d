"""Which rule counts a request: the configured rules, then the built-in ones, then the default."""

from __future__ import annotations

import re
from dataclasses import dataclass

from activities.ratelimit.config import RateLimitSettings
from activities.ratelimit.defaults import BUILTIN_RULES, DEFAULT_RULE


@dataclass(frozen=True)
class Rule:
    name: str  # part of every counter's key: requests of one rule from one address share a count
    pattern: re.Pattern[str] | None  # None: the default rule, every path
    calls: int
    period: float
    methods: frozenset[str] | None  # None: every method

    def matches(self, path: str, method: str) -> bool:
        return ((self.methods is None or method in self.methods)
                and (self.pattern is None or self.pattern.match(path) is not None))


class RuleSet:
    def __init__(self, rules: list[Rule], default: Rule) -> None:
        self.rules, self.default = rules, default

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> "RuleSet":
        builtins = {rule.name: rule for rule in BUILTIN_RULES}
        configured: list[Rule] = []
        for i, given in enumerate(settings.rules):
            base = builtins.pop(given.name, None) if given.name else None
            pattern = given.pattern or base.pattern  # type: ignore[union-attr]  (validated: one of them is set)
            methods = given.methods if given.methods is not None else (base.methods if base else None)
            configured.append(Rule(
                name=given.name or f"rules[{i}]", pattern=re.compile(pattern),
                calls=given.calls or base.calls,  # type: ignore[union-attr]
                period=given.period or (base.period if base else settings.default_period),
                methods=frozenset(methods) if methods else None))
        kept = [Rule(r.name, re.compile(r.pattern), r.calls, r.period, frozenset(r.methods) if r.methods else None)
                for r in BUILTIN_RULES if r.name in builtins]
        default = Rule(DEFAULT_RULE, None, settings.default_calls, settings.default_period, None)
        return cls(configured + kept, default)

    def named(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def match(self, path: str, method: str) -> Rule:
        for rule in self.rules:
            if rule.matches(path, method):
                return rule
        return self.default

    @property
    def longest_period(self) -> float:
        return max([self.default.period, *(rule.period for rule in self.rules)])
