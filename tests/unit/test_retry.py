"""Retry rules: AWS Batch's evaluateOnExit semantics plus shoal's interruption budget."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.domain.retry import AttemptOutcome, decide, glob_match
from shoal.v1.types_pb2 import RETRY_ACTION_EXIT, RETRY_ACTION_RETRY, EvaluateOnExit, RetryStrategy

pytestmark = pytest.mark.unit

RETRY, EXIT = RETRY_ACTION_RETRY, RETRY_ACTION_EXIT


def rule(action=RETRY, *, code="", reason="", status=""):
    return EvaluateOnExit(on_exit_code=code, on_reason=reason, on_status_reason=status, action=action)


def strategy(attempts=0, *rules, interruptions=0):
    return RetryStrategy(attempts=attempts, evaluate_on_exit=rules, interruption_attempts=interruptions)


def exited(code, reason="", status="Essential container in task exited"):
    return AttemptOutcome(code, reason, status, interrupted=False)


INTERRUPTED = AttemptOutcome(None, "", "Host interrupted: termination notice", interrupted=True)
AGENT_LOST = AttemptOutcome(None, "", "Agent lost: no heartbeat for 10s", interrupted=True)
OOM = AttemptOutcome(137, "OutOfMemoryError", "OutOfMemoryError: container killed", interrupted=False)


# -- glob -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("1", "1", True),
        ("1", "10", False),  # whole string
        ("1*", "10", True),
        ("*", "", True),
        ("*", "anything", True),
        ("", "", True),
        ("", "x", False),
        ("?", "", False),
        ("?", "7", True),
        ("??", "7", False),
        ("Host*", "Host interrupted: termination notice", True),
        ("host*", "Host interrupted", False),  # case-sensitive
        ("*Error", "OutOfMemoryError", True),
        ("*Error*", "CannotPullContainerError: pull access denied", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXbYY", False),
        ("[0-9]", "5", False),  # no character classes: '[' is literal
        ("[0-9]", "[0-9]", True),
        ("a.c", "abc", False),  # '.' is literal
        ("*a*a*a*a*a*b", "a" * 200, False),  # no exponential backtracking
    ],
)
def test_glob_match(pattern, value, matches):
    assert glob_match(pattern, value) is matches


def glob_as_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


@settings(max_examples=500, deadline=None)
@given(st.text("ab*?", max_size=8), st.text("ab*?.", max_size=10))
def test_glob_match_agrees_with_a_regex(pattern, value):
    expected = re.fullmatch(glob_as_regex(pattern), value, re.DOTALL) is not None
    assert glob_match(pattern, value) is expected


# -- decide -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_strategy", "outcome", "attempts_made", "retry"),
    [
        # No strategy: one attempt.
        (strategy(), exited(1), 1, False),
        # attempts only: retried until attempts are used up.
        (strategy(3), exited(1), 1, True),
        (strategy(3), exited(1), 2, True),
        (strategy(3), exited(1), 3, False),
        (strategy(10), exited(1), 10, False),
        # First matching rule decides.
        (strategy(3, rule(EXIT, code="1")), exited(1), 1, False),
        (strategy(3, rule(EXIT, code="1")), exited(2), 1, True),  # no match -> retry
        (strategy(3, rule(RETRY, code="1"), rule(EXIT, code="*")), exited(1), 1, True),
        (strategy(3, rule(RETRY, code="1"), rule(EXIT, code="*")), exited(2), 1, False),
        (
            strategy(3, rule(RETRY, code="1"), rule(EXIT, code="*")),
            exited(1),
            3,
            False,
        ),  # RETRY, but none left
        (strategy(3, rule(EXIT, code="*"), rule(RETRY, code="1")), exited(1), 1, False),  # order matters
        # on_reason / on_status_reason.
        (strategy(3, rule(RETRY, reason="OutOfMemory*"), rule(EXIT, reason="*")), OOM, 1, True),
        (strategy(3, rule(RETRY, reason="OutOfMemory*"), rule(EXIT, reason="*")), exited(1), 1, False),
        (strategy(3, rule(EXIT, status="Essential*")), exited(1), 1, False),
        # All globs of a rule must match.
        (strategy(3, rule(EXIT, code="137", reason="Out*")), OOM, 1, False),
        (strategy(3, rule(EXIT, code="137", reason="Cannot*")), OOM, 1, True),
        # on_exit_code never matches an attempt without an exit code.
        (strategy(3, rule(EXIT, code="*")), INTERRUPTED, 1, True),
        # Globs in exit codes.
        (strategy(3, rule(EXIT, code="1?")), exited(12), 1, False),
        (strategy(3, rule(EXIT, code="1?")), exited(1), 1, True),
        (strategy(3, rule(EXIT, code="1*")), exited(137), 1, False),
    ],
)
def test_aws_rules(retry_strategy, outcome, attempts_made, retry):
    decision = decide(retry_strategy, outcome, attempts_made=attempts_made, interruptions_used=0)
    assert decision.retry is retry
    assert decision.charged_to_interruptions is False


def test_retry_on_interruption_only():
    """The DESIGN.md idiom: retry host interruptions, never a failing exit code."""
    s = strategy(3, rule(RETRY, status="Host*"), rule(EXIT, code="*"))
    assert decide(s, INTERRUPTED, attempts_made=1, interruptions_used=0).retry
    assert decide(s, INTERRUPTED, attempts_made=2, interruptions_used=0).retry
    assert not decide(s, INTERRUPTED, attempts_made=3, interruptions_used=0).retry
    assert not decide(s, exited(1), attempts_made=1, interruptions_used=0).retry
    assert not decide(s, exited(3), attempts_made=1, interruptions_used=0).retry
    # 'Agent lost' is not 'Host*' and has no exit code: no rule matches, retried by default.
    assert decide(s, AGENT_LOST, attempts_made=1, interruptions_used=0).retry


def test_interruption_budget_does_not_spend_attempts():
    s = strategy(1, interruptions=2)
    first = decide(s, INTERRUPTED, attempts_made=1, interruptions_used=0)
    assert (first.retry, first.charged_to_interruptions) == (True, True)
    second = decide(s, INTERRUPTED, attempts_made=2, interruptions_used=1)
    assert (second.retry, second.charged_to_interruptions) == (True, True)
    # Budget spent: this interruption counts as the one ordinary attempt, and that was all.
    third = decide(s, INTERRUPTED, attempts_made=3, interruptions_used=2)
    assert (third.retry, third.charged_to_interruptions) == (False, False)
    # An ordinary failure after two charged interruptions is the first counted attempt.
    assert not decide(s, exited(1), attempts_made=3, interruptions_used=2).retry
    assert decide(strategy(2, interruptions=2), exited(1), attempts_made=3, interruptions_used=2).retry


def test_interruption_budget_with_rules():
    s = strategy(1, rule(RETRY, status="Host*"), rule(EXIT, code="*"), interruptions=1)
    d = decide(s, INTERRUPTED, attempts_made=1, interruptions_used=0)
    assert (d.retry, d.charged_to_interruptions) == (True, True)
    # An EXIT rule wins over the budget.
    s = strategy(3, rule(EXIT, status="Host*"), interruptions=5)
    d = decide(s, INTERRUPTED, attempts_made=1, interruptions_used=0)
    assert (d.retry, d.charged_to_interruptions) == (False, False)
    # Failures that are not interruptions never use the budget.
    d = decide(strategy(1, interruptions=5), exited(1), attempts_made=1, interruptions_used=0)
    assert (d.retry, d.charged_to_interruptions) == (False, False)


def test_without_budget_interruptions_count_as_attempts():
    s = strategy(2)
    assert decide(s, INTERRUPTED, attempts_made=1, interruptions_used=0).retry
    assert not decide(s, INTERRUPTED, attempts_made=2, interruptions_used=0).retry


def test_rule_with_unspecified_action_is_skipped():
    s = strategy(3, EvaluateOnExit(on_exit_code="*"), rule(EXIT, code="1"))
    assert not decide(s, exited(1), attempts_made=1, interruptions_used=0).retry


@pytest.mark.parametrize(
    ("retry_strategy", "outcome", "attempts_made", "used", "explanation"),
    [
        (
            strategy(3, rule(RETRY, code="2"), rule(EXIT, code="1")),
            exited(1),
            1,
            0,
            "matched rule 2 (onExitCode=1 -> EXIT)",
        ),
        (strategy(3), exited(1), 3, 0, "3 of 3 attempts used"),
        (strategy(3), exited(1), 1, 0, "1 of 3 attempts used"),
        (strategy(3, rule(EXIT, code="1")), exited(2), 1, 0, "no rule matched; 1 of 3 attempts used"),
        (
            strategy(3, rule(RETRY, status="Host*", reason="")),
            INTERRUPTED,
            2,
            0,
            "matched rule 1 (onStatusReason=Host* -> RETRY); 2 of 3 attempts used",
        ),
        (
            strategy(1, interruptions=3),
            INTERRUPTED,
            2,
            1,
            "interruption 2 of 3 charged to the interruption budget",
        ),
    ],
)
def test_explanations(retry_strategy, outcome, attempts_made, used, explanation):
    decision = decide(retry_strategy, outcome, attempts_made=attempts_made, interruptions_used=used)
    assert decision.explanation == explanation
