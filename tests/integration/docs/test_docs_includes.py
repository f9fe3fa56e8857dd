"""The DAG excerpts in docs/ are the reference DAGs' own code, so a page cannot show wiring the DAGs
do not use.

``docs/include_regions.py`` copies each ``# [START name]`` / ``# [END name]`` region of
``dags/*.py`` into the ``python`` block under its ``<!-- include: dags/<file> <name> -->`` marker
(the convention is written in docs/index.md). These tests hold the tree to it, and check the
script on a small made-up checkout.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.fixtures import REPO, VENV_BIN

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("include_regions", REPO / "docs" / "include_regions.py")
tool = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = tool  # dataclasses look their module up
_spec.loader.exec_module(tool)

_INSTANTIATION = re.compile(r"\b[A-Z]\w*(?:Operator|Sensor)\(")
_PYTHON_BLOCK = re.compile(r"^```(?P<info>python[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def report():
    return tool.sync(REPO)


def test_every_included_block_is_its_region(report) -> None:
    assert report.stale == [], "run: python docs/include_regions.py"


def test_markers_name_existing_regions_and_every_region_is_included(report) -> None:
    assert report.problems == []
    assert report.included == set(report.regions)
    pages = {page.name for page in (REPO / "docs" / "operators").glob("*.md")}
    assert {Path(mark.page).name for mark in _marks() if mark.page.startswith("docs/operators/")} == pages


def _marks():
    for page in sorted((REPO / "docs").rglob("*.md")):
        yield from tool.includes(page.read_text(), page.relative_to(REPO).as_posix())[0]


def test_regions_are_as_ruff_formats_them(report) -> None:
    """ruff format formats the python blocks of docs/*.md too: a region it would rewrite (a keyword
    argument on its own, say) could never stay equal to its included block."""
    unstable = []
    for (path, name), body in sorted(report.regions.items()):
        proc = subprocess.run(
            [str(VENV_BIN / "ruff"), "format", "--stdin-filename", str(REPO / "region.py"), "-"],
            input=body,
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        if proc.stdout != body:
            unstable.append(f"{path} {name}")
    assert unstable == []


def test_every_operator_and_sensor_in_the_reference_dags_is_in_a_region() -> None:
    """A task added to a DAG without markers would be missing from its page."""
    outside = []
    for dag_file in sorted((REPO / "dags").glob("*.py")):
        depth = 0
        for number, line in enumerate(dag_file.read_text().splitlines(), 1):
            if re.match(r"^\s*# \[START \w+\]", line):
                depth += 1
            elif re.match(r"^\s*# \[END \w+\]", line):
                depth -= 1
            elif depth == 0 and _INSTANTIATION.search(line):
                outside.append(f"{dag_file.name}:{number}: {line.strip()}")
    assert outside == []


def test_operator_pages_show_operators_only_through_included_regions() -> None:
    hand_written = []
    for page in sorted((REPO / "docs" / "operators").glob("*.md")):
        text = page.read_text()
        for block in _PYTHON_BLOCK.finditer(text):
            preceding = text[: block.start()].rstrip("\n").rsplit("\n", 1)[-1]
            if block["info"].strip() == "python" and not preceding.startswith("<!-- include:"):
                if _INSTANTIATION.search(block["body"]):
                    line = text.count("\n", 0, block.start()) + 1
                    hand_written.append(f"{page.relative_to(REPO)}:{line}")
    assert hand_written == []


def test_the_script_runs_on_the_standard_library_alone() -> None:
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(REPO / "docs" / "include_regions.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b(\d+) of \1 regions included", proc.stderr), proc.stderr


# --- the script on a made-up checkout -----------------------------------------------------------

DAG = '''\
def my_dag():
    # [START howto_operator_a]
    a = AOperator(
        task_id="a",
        body="""
text at column 0
""",
    )
    # [END howto_operator_a]
    # [START howto_operator_b]
    b = BOperator(task_id="b")
    # [END howto_operator_b]
'''


def _checkout(tmp_path: Path, page: str, dag: str = DAG) -> Path:
    (tmp_path / "dags").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "dags" / "x.py").write_text(dag)
    (tmp_path / "docs" / "page.md").write_text(page)
    return tmp_path


def _block(name: str, body: str = "stale\n") -> str:
    return f"<!-- include: dags/x.py {name} -->\n```python\n{body}```\n"


def test_script_rewrites_a_stale_block_and_check_changes_nothing(tmp_path: Path, capsys) -> None:
    root = _checkout(
        tmp_path, "# Page\n\n" + _block("howto_operator_a") + "\ntext\n\n" + _block("howto_operator_b")
    )
    page = root / "docs" / "page.md"
    before = page.read_text()

    assert tool.main(["--root", str(root), "--check"]) == 1
    assert page.read_text() == before
    assert "stale: docs/page.md:3: dags/x.py howto_operator_a" in capsys.readouterr().out

    assert tool.main(["--root", str(root)]) == 0
    assert page.read_text() == (
        "# Page\n\n<!-- include: dags/x.py howto_operator_a -->\n```python\n"
        'a = AOperator(\n    task_id="a",\n    body="""\ntext at column 0\n""",\n)\n```\n'
        '\ntext\n\n<!-- include: dags/x.py howto_operator_b -->\n```python\nb = BOperator(task_id="b")\n```\n'
    )
    assert tool.main(["--root", str(root), "--check"]) == 0


def test_script_reports_unknown_and_unused_regions(tmp_path: Path) -> None:
    root = _checkout(
        tmp_path,
        _block("howto_operator_a")
        + _block("howto_operator_nope")
        + "<!-- include: dags/y.py howto_operator_a -->\n```python\n```\n",
    )
    report = tool.sync(root)
    assert report.problems == [
        "docs/page.md:5: includes dags/x.py howto_operator_nope: no such region in it",
        "docs/page.md:9: includes dags/y.py howto_operator_a: no such file",
        "dags/x.py: region howto_operator_b is included by no page under docs/",
    ]
    assert tool.main(["--root", str(root)]) == 1  # rewrites what it can, still fails


def test_script_reports_unmatched_and_repeated_markers(tmp_path: Path) -> None:
    dag = "# [START r1]\nx = 1\n# [END r1]\n# [START r1]\n# [END r1]\n# [END r2]\n# [START r3]\ny = 2\n"
    _, problems = tool.regions(dag, "dags/x.py")
    assert problems == [
        "dags/x.py:4: region r1 starts a second time",
        "dags/x.py:6: [END r2] without a [START r2] above it",
        "dags/x.py:7: [START r3] without an [END r3] below it",
    ]


def test_nested_regions_leave_out_inner_markers() -> None:
    found, problems = tool.regions(
        "    # [START outer]\n    a = 1\n    # [START inner]\n    b = 2\n    # [END inner]\n    # [END outer]\n",
        "dags/x.py",
    )
    assert problems == []
    assert found == {"outer": "a = 1\nb = 2\n", "inner": "b = 2\n"}


def test_markers_shown_as_examples_and_malformed_markers(tmp_path: Path) -> None:
    example = "````markdown\n" + _block("howto_operator_gone") + "````\n"
    marks, problems = tool.includes(
        example + "<!-- include: dags/x.py -->\n" + "<!-- include: dags/x.py howto_operator_a -->\ntext\n",
        "docs/page.md",
    )
    assert marks == []  # the marker inside the ```` example is text
    assert problems == [
        "docs/page.md:7: not a marker: '<!-- include: dags/x.py -->' (<!-- include: <file> <region> -->)",
        "docs/page.md:8: the include marker must be followed by a ```python fence",
    ]
