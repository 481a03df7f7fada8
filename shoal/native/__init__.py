"""shoal's native front (front.c): `shoal submit` without starting Python.

`python -m shoal.native` compiles front.c with the C compiler it finds ($CC, cc, gcc, clang) and
puts the program in place of this virtualenv's `shoal` console script. The program sends plain
`shoal submit` command lines straight to a controller's HTTP edge and hands every other command
line to this interpreter's `shoal.cli` unchanged, so `shoal` behaves as before, only faster to
start (docs/benchmarks.md, CLI start-up). scripts/bootstrap runs it; without a compiler, the
Python console script stays and works as it always did.
"""

from __future__ import annotations

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


def default_target() -> Path:
    """This virtualenv's `shoal` (beside its python)."""
    return Path(sys.executable).parent / "shoal"


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
    argv = [cc, *FLAGS, *extra_flags, f"-DSHOAL_PYTHON={_c_string(python)}", "-o", str(tmp), str(SOURCE)]
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
            "`shoal submit` calls then start in about a millisecond instead of a Python start; "
            "every other command line runs the Python CLI, as before."
        ),
    )
    parser.add_argument("--out", type=Path, default=default_target(), help="where to put it (default: %(default)s)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter it hands over to (default: %(default)s)")
    parser.add_argument("--cc", default=None, help="the C compiler (default: $CC, cc, gcc or clang)")
    args = parser.parse_args(argv)
    try:
        out = build(args.out, args.python, cc=args.cc)
    except BuildError as err:
        sys.stderr.write(f"shoal.native: {err}\n")
        return 1
    sys.stderr.write(f"shoal.native: installed the native front at {out} (hands over to {args.python})\n")
    return 0
