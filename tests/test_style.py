"""Style checks run with the tests (so that CI, which runs the README's test command, runs
them): ruff on the Python code and snakefmt on the Snakefile and rules, with the settings in
pyproject.toml.  Both come with the `test` extra."""
import shutil
import subprocess
import sys

import pytest

from helpers_workflow import REPO


def _run(*cmd):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)


def test_ruff_is_clean():
    if shutil.which("ruff") is None:
        pytest.fail("ruff is missing: install the test extra (pip install -e '.[test]')")
    r = _run("ruff", "check", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_snakefmt_is_clean():
    r = _run(sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules")
    assert r.returncode == 0, r.stdout + r.stderr
