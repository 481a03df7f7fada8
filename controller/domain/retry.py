"""Retry rules: after an attempt ends unsuccessfully, is the job tried again?

AWS Batch semantics (DESIGN.md "Retry strategy"), plus shoal's separate interruption budget:

- `attempts` is the total number of attempts, 1-10 (0 means the default, 1).
- `evaluate_on_exit` rules are tried in order; a rule matches when every one of its non-empty
  globs matches (`on_exit_code` against the decimal exit code — never matching an attempt that
  has no exit code —, `on_reason` against the short reason, `on_status_reason` against the
  status reason). The first matching rule decides: EXIT ends the job, RETRY retries it while
  attempts remain. When no rule matches, the job is retried while attempts remain.
- Beyond AWS: an interrupted attempt (agent lost, termination notice) that no rule EXITs is
  charged to `interruption_attempts` while that budget lasts, and then does not spend one of
  `attempts`.

Pure: no clock, no I/O. The caller (the job state machine) applies the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.v1 import types_pb2

__all__ = ["AttemptOutcome", "RetryDecision", "decide", "glob_match"]


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How one attempt ended (the fields the rules can look at)."""

    exit_code: int | None
    """None when the attempt never ran to an exit (agent lost, never started, ...)."""
    reason: str
    """Short machine-matchable reason, e.g. 'OutOfMemoryError'; matched by on_reason."""
    status_reason: str
    """Words for people, e.g. 'Host interrupted: termination notice'; matched by on_status_reason."""
    interrupted: bool
    """The attempt ended because its host was lost or interrupted."""


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    charged_to_interruptions: bool
    """The retry spends the interruption budget instead of `attempts`."""
    explanation: str
    """For logs, e.g. 'matched rule 2 (onExitCode=1 -> EXIT)' or '3 of 3 attempts used'."""


def glob_match(pattern: str, value: str) -> bool:
    """AWS Batch glob: '*' matches any run (also empty), '?' exactly one character.

    Everything else is literal (no [] classes, no escapes), case-sensitive, and the pattern
    must match the whole value. Linear-time backtracking over the last '*', so a hostile
    pattern like 'a*a*a*a*b' cannot blow up.
    """
    p = v = 0
    star = -1  # index in pattern of the last '*' seen
    star_v = 0  # where in value that '*' currently stops
    np, nv = len(pattern), len(value)
    while v < nv:
        if p < np and (pattern[p] == "?" or pattern[p] == value[v]) and pattern[p] != "*":
            p += 1
            v += 1
        elif p < np and pattern[p] == "*":
            star, star_v = p, v
            p += 1
        elif star >= 0:
            star_v += 1  # let the last '*' swallow one more character
            v = star_v
            p = star + 1
        else:
            return False
    while p < np and pattern[p] == "*":
        p += 1
    return p == np


_ACTION_NAMES = {types_pb2.RETRY_ACTION_RETRY: "RETRY", types_pb2.RETRY_ACTION_EXIT: "EXIT"}


def _describe_rule(index: int, rule: types_pb2.EvaluateOnExit) -> str:
    globs = [
        f"{name}={value}"
        for name, value in (
            ("onExitCode", rule.on_exit_code),
            ("onReason", rule.on_reason),
            ("onStatusReason", rule.on_status_reason),
        )
        if value
    ]
    return f"rule {index} ({', '.join(globs)} -> {_ACTION_NAMES.get(rule.action, 'UNSPECIFIED')})"


def _rule_matches(rule: types_pb2.EvaluateOnExit, outcome: AttemptOutcome) -> bool:
    if rule.on_exit_code:
        if outcome.exit_code is None or not glob_match(rule.on_exit_code, str(outcome.exit_code)):
            return False
    if rule.on_reason and not glob_match(rule.on_reason, outcome.reason):
        return False
    if rule.on_status_reason and not glob_match(rule.on_status_reason, outcome.status_reason):
        return False
    return True


def decide(
    strategy: types_pb2.RetryStrategy,
    outcome: AttemptOutcome,
    *,
    attempts_made: int,
    interruptions_used: int,
) -> RetryDecision:
    """Whether to retry after an unsuccessful attempt.

    `attempts_made`: attempts finished so far, including this one. `interruptions_used`:
    how many of those were already charged to the interruption budget (not this one).
    A rule with an unspecified action is skipped (validation refuses such rules; this only
    guards against stored data that predates a check).
    """
    attempts = strategy.attempts or 1
    matched = ""
    for index, rule in enumerate(strategy.evaluate_on_exit, start=1):
        if rule.action not in _ACTION_NAMES or not _rule_matches(rule, outcome):
            continue
        matched = f"matched {_describe_rule(index, rule)}"
        if rule.action == types_pb2.RETRY_ACTION_EXIT:
            return RetryDecision(False, False, matched)
        break
    prefix = f"{matched}; " if matched else "no rule matched; " if strategy.evaluate_on_exit else ""

    if outcome.interrupted and interruptions_used < strategy.interruption_attempts:
        return RetryDecision(
            True,
            True,
            f"{prefix}interruption {interruptions_used + 1} of {strategy.interruption_attempts} "
            "charged to the interruption budget",
        )
    counted = attempts_made - interruptions_used
    if counted < attempts:
        return RetryDecision(True, False, f"{prefix}{counted} of {attempts} attempts used")
    return RetryDecision(False, False, f"{prefix}{counted} of {attempts} attempts used")
