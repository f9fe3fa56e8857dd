"""Every code block marked ``python runnable`` in docs/ runs, on its own, and exits 0.

The marker and the rules are written in docs/index.md. Each block runs as a script in a fresh
interpreter of the project's venv, in an empty temporary folder, with its own AIRFLOW_HOME and
``MLOPS_REPO`` pointing at the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.fixtures import REPO

pytestmark = pytest.mark.integration

DOCS = REPO / "docs"
MARKER = "python runnable"
# a fence of 3+ backticks (or tildes) whose info string is exactly the marker, up to the same fence
_BLOCK = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)  # fmt: skip


def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of each runnable block; blocks nested in a longer fence are examples."""
    found = []
    for m in _BLOCK.finditer(text):
        if m.group("info").strip() == MARKER:
            found.append((text.count("\n", 0, m.start()) + 1, m.group("body")))
    return found


def _collect() -> list[tuple[str, int, str]]:
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        for line, code in runnable_blocks(page.read_text()):
            blocks.append((page.relative_to(REPO).as_posix(), line, code))
    return blocks


BLOCKS = _collect()


def test_the_marker_is_documented_and_used() -> None:
    assert f"```{MARKER}" in (DOCS / "index.md").read_text(), "docs/index.md must define the marker"
    assert BLOCKS, "no runnable block anywhere in docs/"


def test_block_extraction_follows_fences() -> None:
    text = "```python runnable\nx = 1\n```\n\n````markdown\n```python runnable\nnested = 1\n```\n````\n```python\ny\n```\n"
    assert runnable_blocks(text) == [(1, "x = 1\n")]


@pytest.mark.parametrize(("page", "line", "code"), BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_runnable_block(page: str, line: int, code: str, tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "airflow-home"
    work.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "MLFLOW_"))}
    env.update(AIRFLOW_HOME=str(home), MLOPS_REPO=str(REPO), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               PYTHONPATH=str(REPO))  # fmt: skip
    script = work / "block.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, (
        f"{page}:{line}: the runnable block failed ({proc.returncode})\n--- code ---\n{code}\n"
        f"--- stdout ---\n{proc.stdout[-2000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )


def test_relative_links_between_pages_resolve() -> None:
    """A guide whose links lead nowhere cannot be followed: every relative link names a file."""
    broken = []
    for page in sorted(DOCS.rglob("*.md")):
        text = _BLOCK.sub("", page.read_text())  # links inside code blocks are examples
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target or target.startswith(("#", "mailto:")):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken
