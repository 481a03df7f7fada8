"""deploy/ansible is clean under ansible-lint's production profile (configured in .ansible-lint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import ANSIBLE_DIR, ansible_env, run, tool

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(300)]


def test_ansible_lint_production_profile_is_clean(tmp_path: Path) -> None:
    result = run([tool("ansible-lint"), "--nocolor", "--offline"], env=ansible_env(tmp_path), timeout=280, cwd=ANSIBLE_DIR)
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    assert "Profile 'production' was required, and it passed" in result.stderr + result.stdout
