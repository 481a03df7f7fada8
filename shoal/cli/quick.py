"""A parser for the common command lines of the hot commands that needs no argparse.

`shoal submit -- true` in a shell loop pays for argparse on every call: importing it (with `re`
and `gettext`) and building the parser of every command costs about as much as the rest of the
call. This parser knows submit, describe, wait and jobs list, and only their plain forms: a flag
it does not know (or an abbreviation, `-h`, a value that looks like a flag, a value that does
not convert, a positional where argparse would complain) makes it return None, and the call
goes to argparse, which then also owns every error message. When it does answer, it gives what
argparse gives: tests/unit/cli/test_quick.py compares the two on generated command lines.
"""

from __future__ import annotations

from shoal.cli import values

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Args:
    """What argparse.Namespace is to the commands: attributes, compared by value."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Args({vars(self)!r})"


def _lower_choice(*choices: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(text)
        return text.lower()

    return convert


def _choice(*choices: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return convert


def _text(text: str) -> str:
    return text


def _int(text: str) -> int:
    return int(text)


# option -> (destination, converter, repeatable)
_Spec = dict[str, tuple[str, "Callable[[str], Any]", bool]]
_COMMON: _Spec = {
    "--addr": ("addr", _text, False),
    "-o": ("output", _lower_choice("table", "json"), False),
    "--output": ("output", _lower_choice("table", "json"), False),
}
_COMMON_DEFAULTS = {"ca": None, "token": None, "addr": None, "output": "table"}

_SUBMIT: _Spec = {
    **_COMMON,
    "-q": ("queue", _text, False),
    "--queue": ("queue", _text, False),
    "-n": ("name", _text, False),
    "--name": ("name", _text, False),
    "-d": ("definition", _text, False),
    "--definition": ("definition", _text, False),
    "--vcpus": ("vcpus", values.positive_float, False),
    "--memory": ("memory", values.positive_int, False),
    "--image": ("image", _text, False),
    "--runtime": ("runtime", _choice("", "process", "podman", "docker"), False),
    "-e": ("env", values.key_value, True),
    "--env": ("env", values.key_value, True),
    "--array-size": ("array_size", _int, False),
    "--array-parallelism": ("array_parallelism", values.positive_int, False),
    "--depends-on": ("depends_on", _text, True),
    "-p": ("parameter", values.key_value, True),
    "--parameter": ("parameter", values.key_value, True),
    "--retry-attempts": ("retry_attempts", _int, False),
    "--timeout": ("timeout", values.positive_int, False),
    "-f": ("from_file", _text, False),
    "--from-file": ("from_file", _text, False),
}
_SUBMIT_DEFAULTS = {
    "queue": "", "name": "", "definition": "", "vcpus": None, "memory": None, "image": None, "runtime": "",
    "env": [], "array_size": None, "array_parallelism": None, "depends_on": [], "parameter": [],
    "retry_attempts": None, "timeout": None, "wait": False, "from_file": None, "command": [],
    # Given only through argparse (--gpus, --share-identifier, ... send the line there).
    "gpus": None, "share_identifier": "", "scheduling_priority": None, "num_nodes": None, "main_node": None,
}  # fmt: skip
_WAIT: _Spec = {**_COMMON, "--timeout": ("timeout", values.positive_float, False)}
_LIST: _Spec = {
    **_COMMON,
    "-q": ("queue", _text, False),
    "--queue": ("queue", _text, False),
    "-s": ("status", values.job_status, False),
    "--status": ("status", values.job_status, False),
    "--name-prefix": ("name_prefix", _text, False),
}
_FLAGS = {"submit": {"--wait": "wait"}, "jobs list": {"--quiet": "quiet"}}


def parse(argv: list[str]) -> Args | None:
    """The parsed command line, or None to let argparse parse it."""
    if not argv:
        return None
    if argv[0] == "submit":
        return _parse("submit", argv[1:], _SUBMIT, {**_SUBMIT_DEFAULTS}, positionals=None)
    if argv[0] in ("describe", "wait"):
        spec = _COMMON if argv[0] == "describe" else _WAIT
        defaults: dict[str, Any] = {} if argv[0] == "describe" else {"timeout": None}
        return _parse(argv[0], argv[1:], spec, defaults, positionals="job_ids")
    if argv[:2] == ["jobs", "list"]:
        defaults = {"queue": "", "status": None, "name_prefix": "", "quiet": False}
        return _parse("jobs list", argv[2:], _LIST, defaults, positionals=None)
    return None


def _parse(command: str, argv: list[str], spec: _Spec, defaults: dict[str, Any], positionals: str | None) -> Args | None:
    found: dict[str, Any] = {**_COMMON_DEFAULTS, **defaults}
    flags = _FLAGS.get(command, {})
    words: list[str] = []
    groups = 0  # runs of positionals: argparse takes one run of nargs="+" and refuses a second
    previous_positional = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            if command != "submit":
                return None
            found["command"] = argv[i + 1 :]
            break
        if not arg.startswith("-") or arg == "-":
            if positionals is None:
                return None  # submit's command goes after --; argparse says so
            if not previous_positional:
                groups += 1
            words.append(arg)
            previous_positional = True
            i += 1
            continue
        previous_positional = False
        if arg in flags:
            found[flags[arg]] = True
            i += 1
            continue
        name, eq, value = arg.partition("=")
        entry = spec.get(name)
        if entry is None or (eq and not name.startswith("--")):
            return None
        if not eq:
            if i + 1 >= len(argv):
                return None
            value = argv[i + 1]
            i += 1
            if value.startswith("-") and value != "-":
                return None
        i += 1
        dest, convert, repeatable = entry
        try:
            converted = convert(value)
        except ValueError:
            return None
        if repeatable:
            found[dest] = [*found.get(dest, []), converted]
        else:
            found[dest] = converted
    if positionals is not None:
        if not words or groups > 1:
            return None
        found[positionals] = words
    found["func"] = _command(command)
    found["_prog"] = "shoal " + command
    return Args(**found)


def _command(command: str) -> Callable[[Any], int]:
    from shoal.cli import jobs

    return {
        "submit": jobs.run_submit,
        "describe": jobs.run_describe,
        "wait": jobs.run_wait,
        "jobs list": jobs.run_list,
    }[command]
