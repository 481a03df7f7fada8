"""`shoal`: the command line of the shoal batch system.

`main(argv)` parses, runs one command and returns its exit status (it never raises SystemExit
for ordinary errors, so tests and scripts can call it directly). Every error is one line on
stderr, `shoal: <message>`, and its kind decides the exit status (see EXIT_CODES_HELP).
"""

from __future__ import annotations

import os
import sys

from shoal.cli.console import (
    ADDRESS_ENV,
    DEFAULT_ADDRESS,
    EXIT_BUG,
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    UsageError,
    note,
)
from shoal.errors import DeadlineExceeded, ShoalError, Unavailable
from shoal.tls import CA_ENV, TOKEN_ENV, TOKEN_FILE_ENV

# Start-up time is part of every command (scripts call `shoal submit` in loops), so this module
# imports only what the quick path needs; argparse, the SDK (grpc) and the noun modules' heavy
# parts are imported when a command needs them. See docs/benchmarks.md (CLI start-up).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from shoal.cli.options import Parser

DESCRIPTION = """\
shoal runs batch jobs on your own machines, the AWS Batch way: submit jobs to queues, the
controller places them on nodes of compute environments, agents run them.

quick start:
  shoal up                                 # a local cluster: etcd, a controller, an agent
  shoal submit --wait -- echo hello        # run a job and wait for it
  shoal jobs list                          # what ran, what runs, what waits
  shoal logs JOB_ID                        # its output
"""

EPILOG = f"""\
environment:
  {ADDRESS_ENV}   controller address(es), comma-separated: HOST:PORT (gRPC) and/or
               http(s)://HOST:PORT (its HTTP edge: submit, describe, jobs list, wait, cancel and
               terminate start faster through it); default {DEFAULT_ADDRESS}; --addr overrides it
  {CA_ENV}     cluster CA certificate (PEM) for TLS; --ca overrides it
  {TOKEN_ENV}  bearer token; --token overrides it ({TOKEN_FILE_ENV}: a file holding it)
  SHOAL_NATIVE 0: `shoal submit` goes through Python too (where `shoal` is the native front,
               built by scripts/bootstrap or `python -m shoal.native`, plain submit lines are
               sent from C without starting Python)

{EXIT_CODES_HELP}"""

# Daemons and tools that live outside the SDK: imported only when asked for, so that the CLI
# starts fast and works where they are not installed. name -> (module, help).
_DELEGATED: dict[str, tuple[str, str]] = {
    "controller": ("controller.main", "run a controller replica"),
    "agent": ("agent.main", "run a node agent on this host"),
    "up": ("shoal.cli.up", "start a local cluster (etcd, controller, agent) for trying shoal"),
}


def build_parser(argv: Sequence[str] = ("certs",)) -> Parser:
    """The whole argparse tree; `certs`' flags only when `argv` is a `certs` command line."""
    import argparse

    from shoal.cli import certs, defs, envs, jobs, nodes, policies, queues, why
    from shoal.cli.options import Parser, formatter

    _VersionAction = _version_action()  # noqa: N806 - a class
    parser = Parser(
        prog="shoal",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="show shoal's version and exit")
    # Read by _global_options before parsing (so they work after the command too); listed
    # here for --help.
    parser.add_argument("--ca", metavar="FILE", help=f"cluster CA (PEM): talk TLS to the controller (else ${CA_ENV})")
    parser.add_argument("--token", metavar="T",
                        help=f"bearer token (else ${TOKEN_ENV}, else the file ${TOKEN_FILE_ENV})")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    jobs.register(sub)
    nodes.register(sub)
    queues.register(sub)
    policies.register(sub)
    envs.register(sub)
    defs.register(sub)
    why.register(sub)
    certs.register(sub, detailed=bool(argv) and argv[0] == "certs")
    for name, (_, help_text) in _DELEGATED.items():
        p = sub.add_parser(name, help=help_text, add_help=False, description=help_text)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_delegate_from_args(name))
    _record_prog(parser)
    return parser


def _record_prog(parser: argparse.ArgumentParser) -> None:
    import argparse

    # Each (sub)command stores its own prog ("shoal jobs list") so that an error found after
    # parsing can point at the right --help.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.set_defaults(_prog=child.prog)
                _record_prog(child)


def _version_action() -> type:
    import argparse

    class VersionAction(argparse.Action):
        # argparse's own "version" action wants the text when the parser is built; looking the
        # version up (importlib.metadata) costs more than building every command's parser.
        def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
            super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)  # type: ignore[arg-type]

        def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
            sys.stdout.write(f"shoal {_version()}\n")
            parser.exit()

    return VersionAction


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("shoal")
    except Exception:  # noqa: BLE001 - not installed as a distribution (running from a checkout)
        return "unknown"


def _delegate_from_args(name: str) -> Callable[[argparse.Namespace], int]:
    return lambda args: delegate(name, args.rest)


def delegate(name: str, rest: Sequence[str]) -> int:
    """Run `shoal <name> ...` by handing the rest of the command line to its own main()."""
    import importlib

    module_name, _ = _DELEGATED[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        # Only "the module itself is missing" is reported this way; an import error inside an
        # existing module is a bug and must show as one.
        if err.name is None or not module_name.startswith(err.name):
            raise
        note(f"shoal: `shoal {name}` is not available: module {module_name} is not installed")
        return EXIT_USAGE
    result = module.main(list(rest))
    return int(result or 0)


def exit_code_for(err: ShoalError) -> int:
    """3 when a server answered and refused; 4 when no server could answer."""
    if isinstance(err, (Unavailable, DeadlineExceeded)):
        return EXIT_UNAVAILABLE
    return EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Delegated commands get their argv untouched (their own --help included).
    if args_list and args_list[0] in _DELEGATED:
        return _guarded(lambda: delegate(args_list[0], args_list[1:]))

    def run() -> int:
        rest, restore = _global_options(args_list)
        try:
            return parse_and_run(rest)
        finally:
            restore()

    return _guarded(run)


def parse_and_run(rest: list[str]) -> int:
    from shoal.cli import quick

    # The common command lines of the hot commands are parsed without argparse (which costs a
    # short-lived process about as much as the rest of the call); anything else, and every
    # error, is argparse's. tests/unit/cli/test_quick.py checks that both agree.
    args = quick.parse(rest)
    if args is None:
        args = _parse_full(rest)
        if args is None:
            return EXIT_USAGE
    return int(args.func(args))


def _parse_full(rest: list[str]) -> argparse.Namespace | None:
    parser = build_parser(rest)
    args, extras = parser.parse_known_args(rest)
    if extras:
        prog = getattr(args, "_prog", "shoal")
        hint = ""
        if prog == "shoal submit":
            hint = "; put the command after --, e.g. shoal submit -- sh -c 'echo hi'"
        raise UsageError(f"unrecognized arguments: {' '.join(extras)}{hint} (see '{prog} --help')")
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return None
    return args


def _guarded(run: Callable[[], int]) -> int:
    try:
        return run()
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else EXIT_USAGE)
    except UsageError as err:
        note(f"shoal: {err}")
        return EXIT_USAGE
    except ShoalError as err:
        # A job definition file that does not parse is a usage error. shoal.jobdef is loaded
        # only by the commands that read such files: if it is not loaded, this is not one.
        jobdef = sys.modules.get("shoal.jobdef")
        if jobdef is not None and isinstance(err, jobdef.JobDefinitionFileError):
            note(f"shoal: {err.message}")
            return EXIT_USAGE
        note(f"shoal: {_one_line(err.message)}")
        return exit_code_for(err)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`shoal logs X | head`): stop quietly, as cat does.
        _silence_stdout()
        return 141
    except Exception as err:  # noqa: BLE001 - last resort: one line instead of a traceback
        if os.environ.get("SHOAL_DEBUG"):
            import traceback

            traceback.print_exc()
        note(
            f"shoal: internal error: {type(err).__name__}: {_one_line(str(err))} (set SHOAL_DEBUG=1 for details)"
        )
        return EXIT_BUG


def _global_options(argv: list[str]) -> tuple[list[str], Callable[[], None]]:
    """Take --ca/--token from anywhere before `--` and hand them to the SDK through its
    environment variables; returns the rest, and a function that restores the environment (so
    main() can be called again in-process)."""
    rest: list[str] = []
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name, eq, value = arg.partition("=")
        if name in ("--ca", "--token"):
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"argument {name}: expected one argument (see 'shoal --help')")
                value = argv[i + 1]
                i += 1
            found[CA_ENV if name == "--ca" else TOKEN_ENV] = value
        else:
            rest.append(arg)
        i += 1
    saved = {k: os.environ.get(k) for k in found}
    os.environ.update(found)

    def restore() -> None:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old

    return rest, restore


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
