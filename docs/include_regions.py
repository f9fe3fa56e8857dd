"""Keep the DAG excerpts in docs/ identical to the reference DAGs they are taken from.

A *region* of a file under ``dags/`` is the lines between ``# [START <name>]`` and
``# [END <name>]`` (the markers apache/airflow's example DAGs use for the provider docs). A page
under ``docs/`` includes a region with a marker line directly followed by a fenced block:

    <!-- include: dags/mlops_continuous_training.py howto_operator_evaluate -->
    ```python
    (the region, dedented; written by this script)
    ```

Usage, from the checkout::

    python docs/include_regions.py           # rewrite every included block from its region
    python docs/include_regions.py --check   # change nothing; exit 1 if a block is stale

Both modes also report, and exit 1 on, what cannot be rewritten: a marker naming a file or region
that does not exist, a region that no page includes, a marker without its block, and a START
without its END. ``ruff format`` also formats the ``python`` blocks of the pages, so a region must
read as whole statements that ruff leaves as they are once dedented (the test checks it): put
the markers around a whole assignment, not around a keyword argument. ``tests/integration/docs/test_docs_includes.py`` runs the check.

Standard library only: the docs can be synced without the project's dependencies.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = "dags/*.py"
PAGES = "docs/**/*.md"

_REGION = re.compile(r"^[ \t]*# \[(?P<kind>START|END) (?P<name>[A-Za-z0-9_]+)\][ \t]*$")
_MARKER = re.compile(r"^<!-- include: (?P<path>\S+) (?P<name>[A-Za-z0-9_]+) -->[ \t]*$")
_FENCE = "```python"
_OPEN_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})")


@dataclass(frozen=True)
class Include:
    """One marker on a page and the block below it (``body_start``/``body_end``: line indexes)."""

    page: str
    line: int  # 1-based line of the marker
    path: str
    name: str
    body_start: int
    body_end: int


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dedent(line: str, width: int) -> str:
    """``line`` without the region's indentation (the START marker's), and never more than its own
    leading spaces: a string literal's lines at column 0 stay as they are."""
    return line[min(width, _indent(line)) :].rstrip()


def regions(text: str, where: str) -> tuple[dict[str, str], list[str]]:
    """The regions of a source file by name (dedented, marker lines of nested regions left out),
    and the problems found (unmatched or repeated markers), each naming ``where`` and the line."""
    lines = text.splitlines()
    found: dict[str, str] = {}
    problems: list[str] = []
    open_at: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = _REGION.match(line)
        if not match:
            continue
        name = match["name"]
        if match["kind"] == "START":
            if name in open_at or name in found:
                problems.append(f"{where}:{index + 1}: region {name} starts a second time")
            open_at.setdefault(name, index)
            continue
        if name not in open_at:
            problems.append(f"{where}:{index + 1}: [END {name}] without a [START {name}] above it")
            continue
        start = open_at.pop(name)
        body = [
            _dedent(ln, _indent(lines[start])) for ln in lines[start + 1 : index] if not _REGION.match(ln)
        ]
        found.setdefault(name, "\n".join(body).strip("\n") + "\n")  # a repeat is reported above
    for name, start in open_at.items():
        problems.append(f"{where}:{start + 1}: [START {name}] without an [END {name}] below it")
    return found, problems


def includes(text: str, page: str) -> tuple[list[Include], list[str]]:
    """The include markers of a page with the extent of their blocks, and malformed markers."""
    lines = text.splitlines()
    found: list[Include] = []
    problems: list[str] = []
    fence = None  # the fence of the code block the scan is in: a marker shown in an example is text
    for index, line in enumerate(lines):
        if fence is not None:  # closed by a run of the same character, at least as long
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if opening := _OPEN_FENCE.match(line):
            fence = opening["fence"]
            continue
        match = _MARKER.match(line)
        if not match:
            if line.startswith("<!-- include:"):
                problems.append(
                    f"{page}:{index + 1}: not a marker: {line!r} (<!-- include: <file> <region> -->)"
                )
            continue
        if index + 1 >= len(lines) or lines[index + 1].rstrip() != _FENCE:
            problems.append(f"{page}:{index + 1}: the include marker must be followed by a {_FENCE} fence")
            continue
        end = next((i for i in range(index + 2, len(lines)) if lines[i].rstrip() == "```"), None)
        if end is None:
            problems.append(f"{page}:{index + 2}: the included block is never closed")
            continue
        found.append(Include(page, index + 1, match["path"], match["name"], index + 2, end))
    return found, problems


@dataclass
class Report:
    """What a sync found: pages whose text changes, and problems the script cannot fix."""

    rewritten: dict[Path, str]  # page -> its text with every block taken from its region
    stale: list[str]  # "page:line: dags/x.py region" of each block that differs from its region
    problems: list[str]
    regions: dict[tuple[str, str], str]  # (source path, region name) -> region text
    included: set[tuple[str, str]]


def sync(root: Path = REPO) -> Report:
    """Read every source region and every page include under ``root``; change nothing on disk."""
    all_regions: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    for source in sorted(root.glob(SOURCES)):
        rel = source.relative_to(root).as_posix()
        found, bad = regions(source.read_text(encoding="utf-8"), rel)
        all_regions.update({(rel, name): body for name, body in found.items()})
        problems += bad
        problems += [
            f"{rel}: region {name} holds a line ``` that would close its block on the page"
            for name, body in found.items()
            if "```" in (line.strip() for line in body.splitlines())
        ]

    rewritten: dict[Path, str] = {}
    stale: list[str] = []
    included: set[tuple[str, str]] = set()
    for page in sorted(root.glob(PAGES)):
        rel = page.relative_to(root).as_posix()
        text = page.read_text(encoding="utf-8")
        marks, bad = includes(text, rel)
        problems += bad
        lines = text.splitlines(keepends=True)
        updates = []
        for mark in marks:
            key = (mark.path, mark.name)
            if key not in all_regions:
                known = mark.path in {path for path, _ in all_regions}
                problems.append(
                    f"{rel}:{mark.line}: includes {mark.path} {mark.name}: "
                    + ("no such region in it" if known else "no such file")
                )
                continue
            included.add(key)
            if "".join(lines[mark.body_start : mark.body_end]) != all_regions[key]:
                stale.append(f"{rel}:{mark.line}: {mark.path} {mark.name}")
                updates.append(mark)
        for mark in reversed(updates):  # bottom-up, so the line indexes above stay valid
            body = all_regions[(mark.path, mark.name)]
            lines[mark.body_start : mark.body_end] = body.splitlines(keepends=True)
        new = "".join(lines)
        if new != text:
            rewritten[page] = new
    for path, name in sorted(set(all_regions) - included):
        problems.append(f"{path}: region {name} is included by no page under docs/")
    return Report(rewritten, stale, problems, all_regions, included)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    report = sync(args.root)
    if args.check:
        for item in report.stale:
            print(f"stale: {item} (run: python docs/include_regions.py)")
    else:
        for page, text in report.rewritten.items():
            page.write_text(text, encoding="utf-8")
            print(f"rewrote {page.relative_to(args.root).as_posix()}")
    for problem in report.problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(report.included)} of {len(report.regions)} regions included", file=sys.stderr)
    return 1 if report.problems or (args.check and report.stale) else 0


if __name__ == "__main__":
    sys.exit(main())
