"""Regenerate shoal/v1/*_pb2*.py(i) from proto/shoal/v1/*.proto.

    python scripts/gen_proto.py            # write into the source tree
    python scripts/gen_proto.py --out DIR  # write elsewhere (the staleness test uses this)

The proto tree mirrors the Python package (proto/shoal/v1 -> shoal/v1), so the generated
imports (`from shoal.v1 import types_pb2`) work as they are; nothing is rewritten afterwards.
grpcio-tools is pinned in pyproject.toml so that the output is reproducible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "shoal" / "v1").glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: the repository)")
    ns = parser.parse_args()
    generate(ns.out)
    print(f"generated into {ns.out / 'shoal' / 'v1'}", file=sys.stderr)


if __name__ == "__main__":
    main()
