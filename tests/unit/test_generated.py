"""The committed stubs in shoal/v1 are exactly what scripts/gen_proto.py makes from proto/."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path)], check=True)
    fresh = tmp_path / "shoal" / "v1"
    committed = ROOT / "shoal" / "v1"
    generated = sorted(p.name for p in fresh.iterdir() if p.name != "__init__.py")
    assert generated, "protoc produced nothing"
    stale = [name for name in generated if not filecmp.cmp(fresh / name, committed / name, shallow=False)]
    missing = [name for name in generated if not (committed / name).exists()]
    assert not stale and not missing, f"run `python scripts/gen_proto.py`: stale {stale}, missing {missing}"
    extra = sorted(p.name for p in committed.glob("*_pb2*") if p.name not in generated)
    assert not extra, f"generated files without a .proto: {extra}"
