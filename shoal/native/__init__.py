"""shoal's native front (front.c): `shoal submit` without starting Python.

`python -m shoal.native` compiles front.c with the C compiler it finds ($CC, cc, gcc, clang) and
puts the program in place of this virtualenv's `shoal` console script. The program sends plain
`shoal submit` command lines straight to a controller's HTTP edge and hands every other command
line to this interpreter's `shoal.cli` unchanged, so `shoal` behaves as before, only faster to
start (docs/benchmarks.md, CLI start-up). scripts/bootstrap runs it; without a compiler, the
Python console script stays and works as it always did.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

SOURCE = Path(__file__).with_name("front.c")
FLAGS = ("-O2", "-std=c11", "-Wall", "-Wextra")


class BuildError(Exception):
    """The front could not be built (no compiler, or the compiler refused)."""


def compiler() -> str | None:
    """$CC, else the first of cc, gcc, clang on PATH."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_MARK = b"shoal-native-front source="


def _source_sha() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def front_id(python: str) -> bytes:
    """The marker a front built from this source for `python` carries (FRONT_ID in front.c)."""
    return _MARK + f"{_source_sha()} python={os.path.abspath(python)};".encode()


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def is_front(path: Path) -> bool:
    """Whether `path` is a front (of any source or interpreter), not pip's Python script."""
    return _MARK in _read(path)


def is_current(path: Path, python: str) -> bool:
    """Whether `path` is a front built from this source for `python` (nothing to rebuild)."""
    return front_id(python) in _read(path)


def default_target() -> Path:
    """Where pip puts this interpreter's `shoal` console script (a virtualenv's bin/)."""
    import sysconfig

    return Path(sysconfig.get_path("scripts")) / "shoal"


def is_shoal(path: Path) -> bool:
    """Whether `path` is shoal's: pip's console script for shoal.cli, or a front."""
    text = _read(path)
    return _MARK in text or b"shoal.cli.main" in text


def build(
    out: Path, python: str | None = None, *, cc: str | None = None, extra_flags: Sequence[str] = ()
) -> Path:
    """Compile the front into `out` (atomically: a running `shoal` is never half-written); it
    hands over to `python` (default: this interpreter) for what it does not do itself."""
    python = os.path.abspath(python or sys.executable)
    cc = cc or compiler()
    if not cc:
        raise BuildError("no C compiler found (cc, gcc or clang; Debian: apt-get install gcc libc6-dev), or set CC")
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    argv = [cc, *FLAGS, *extra_flags, f"-DSHOAL_PYTHON={_c_string(python)}",
            f"-DSHOAL_FRONT_SOURCE={_c_string(_source_sha())}", "-o", str(tmp), str(SOURCE)]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as err:
        raise BuildError(f"cannot run {cc}: {err.strerror}") from None
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        detail = " ".join(proc.stderr.split())[-600:]
        raise BuildError(f"{cc} could not build {SOURCE.name}: {detail}")
    tmp.chmod(0o755)
    os.replace(tmp, out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m shoal.native",
        description=(
            "Build shoal's native front and install it as this virtualenv's `shoal`: plain "
            "`shoal submit` calls are sent without starting Python; "
            "every other command line runs the Python CLI, as before."
        ),
    )
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to put it (default: {default_target()}, which must be shoal's own)")  # fmt: skip
    parser.add_argument("--python", default=sys.executable, help="the interpreter it hands over to (default: %(default)s)")
    parser.add_argument("--cc", default=None, help="the C compiler (default: $CC, cc, gcc or clang)")
    parser.add_argument(
        "--if-needed", action="store_true",
        help="do nothing when --out already is a front built from this source for --python "
        "(prints 'up to date'; else 'installed ...'): for scripts/bootstrap and the Ansible role",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = default_target()
        if args.out.exists() and not is_shoal(args.out):
            sys.stderr.write(f"shoal.native: {args.out} is not shoal's console script; say where with --out\n")
            return 1
    if args.if_needed and is_current(args.out, args.python):
        sys.stdout.write(f"up to date: {args.out}\n")
        return 0
    try:
        out = build(args.out, args.python, cc=args.cc)
    except BuildError as err:
        sys.stderr.write(f"shoal.native: {err}\n")
        return 1
    sys.stdout.write(f"installed the native front at {out} (hands over to {os.path.abspath(args.python)})\n")
    return 0
