"""The reference parts of docs/ agree with the code they describe.

Nothing here is a hand-kept list: the classes come from ``provider_info`` (its operator and sensor
modules), their arguments, defaults and templated fields from ``inspect.signature`` and
``template_fields``, the configuration options and connection extras from ``provider_info``.

* every public operator and sensor has a page under ``docs/operators/`` naming it in its title,
  and a ``:param:`` line for each of its arguments (and none for an argument it lacks);
* every row of an argument table (``| argument | templated | default | meaning |``) names an
  argument of the page's classes, says *yes* under *templated* exactly for templated ones, and
  gives the default the signature has (a Python literal equal to it; ``required`` for none; words
  for a ``None`` default that the operator resolves, e.g. ``$AIRFLOW_HOME/reports/...``); every
  argument of the classes has a row. An argument of Airflow's ``BaseOperator`` may have a row
  (``pool``): its literal default is checked on an instance;
* every ``[section] option`` of ``provider_info["config"]`` is documented with its default, and
  every ``[mlops] option`` / ``AIRFLOW__MLOPS__OPTION`` the docs mention exists;
* every ``conn-fields`` extra of a connection type is documented as "extra `name`" in the
  connections guide's section of that type and read by the hook's code; every extra the section
  names exists; every relabelled form field shows its label there.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from airflow.sdk import BaseOperator

from airflow_mlops.provider_info import get_provider_info
from tests.helpers.fixtures import REPO

pytestmark = pytest.mark.integration

DOCS = REPO / "docs"
INFO = get_provider_info()
ARGUMENT_TABLE = "| argument | templated | default | meaning |"
_ROW = re.compile(
    r"^\|\s*`(?P<name>\w+)`(?:\s*\((?P<only>[^)]+)\))?\s*\|(?P<templated>[^|]*)\|(?P<default>[^|]*)\|"
)
_BASE_PARAMS = set(inspect.signature(BaseOperator.__init__).parameters) - {"self", "kwargs"}


def public_classes() -> dict[str, type]:
    """Every public operator and sensor class of the modules ``provider_info`` declares."""
    found = {}
    for group in ("operators", "sensors"):
        for entry in INFO[group]:
            for module_name in entry["python-modules"]:
                module = importlib.import_module(module_name)
                for name, obj in vars(module).items():
                    if (
                        inspect.isclass(obj)
                        and issubclass(obj, BaseOperator)
                        and obj.__module__ == module_name
                        and not name.startswith("_")
                    ):
                        found[name] = obj
    return found


CLASSES = public_classes()


def own_classes(cls: type) -> list[type]:
    """``cls`` and its ancestors that belong to this package (where its arguments are declared)."""
    return [k for k in cls.__mro__ if k.__module__.startswith("airflow_mlops.")]


def arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments the package's classes in ``cls``'s MRO declare (not ``**kwargs``)."""
    found: dict[str, inspect.Parameter] = {}
    for klass in own_classes(cls):
        if "__init__" in vars(klass):
            for param in inspect.signature(klass.__init__).parameters.values():
                if param.name != "self" and param.kind is not param.VAR_KEYWORD:
                    found.setdefault(param.name, param)
    return found


def documented_params(cls: type) -> set[str]:
    text = "\n".join(k.__doc__ or "" for k in own_classes(cls)) + "\n".join(
        vars(k)["__init__"].__doc__ or "" for k in own_classes(cls) if "__init__" in vars(k)
    )
    return set(re.findall(r":param (\w+):", text))


def pages() -> dict[Path, list[str]]:
    """``{page: [class names in its title]}`` for docs/operators/*.md."""
    found = {}
    for page in sorted((DOCS / "operators").glob("*.md")):
        title = page.read_text().splitlines()[0]
        found[page] = [name for name in CLASSES if re.search(rf"\b{name}\b", title)]
    return found


@dataclass
class Row:
    page: str
    line: int
    name: str
    only: str | None
    templated: bool
    default: str


def argument_rows(page: Path) -> list[Row]:
    rows, in_table = [], False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if line.strip() == ARGUMENT_TABLE:
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            in_table = False
        if in_table and (m := _ROW.match(line)):
            rows.append(
                Row(
                    page.relative_to(REPO).as_posix(),
                    number,
                    m["name"],
                    m["only"],
                    m["templated"].strip() == "yes",
                    m["default"].strip(),
                )
            )
    return rows


def _literal(cell: str) -> tuple[bool, object]:
    """``(True, value)`` when the cell is one backticked Python literal, else ``(False, None)``."""
    m = re.fullmatch(r"`([^`]+)`", cell)
    if not m:
        return False, None
    try:
        return True, ast.literal_eval(m[1])
    except (ValueError, SyntaxError):
        return False, None


def _instance(cls: type) -> BaseOperator:
    """An instance built with only the required arguments (each given ``"1"``)."""
    required = {n: "1" for n, p in arguments(cls).items() if p.default is inspect.Parameter.empty}
    return cls(task_id="docs_reference", **required)


PAGES = pages()
ROWS = [(row, PAGES[page]) for page in PAGES for row in argument_rows(page)]


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_class_has_a_page(name: str) -> None:
    assert any(name in names for names in PAGES.values()), (
        f"{name} has no page under docs/operators/ naming it in its title"
    )


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_docstring_params_are_the_arguments(name: str) -> None:
    cls = CLASSES[name]
    declared, documented = set(arguments(cls)), documented_params(cls)
    assert not declared - documented, (
        f"{name}: arguments without a :param: line: {sorted(declared - documented)}"
    )
    assert not documented - declared, (
        f"{name}: :param: lines for no argument: {sorted(documented - declared)}"
    )


@pytest.mark.parametrize("page", sorted(PAGES), ids=lambda p: p.name)
def test_every_argument_has_a_row(page: Path) -> None:
    names = PAGES[page]
    if not names:
        pytest.skip(f"{page.name} documents no operator or sensor class")
    rows = argument_rows(page)
    assert rows, f"{page.name}: no argument table ({ARGUMENT_TABLE})"
    for name in names:
        documented = {r.name for r in rows if _applies(r, name)}
        missing = set(arguments(CLASSES[name])) - documented
        assert not missing, f"{page.name}: arguments of {name} without a row: {sorted(missing)}"


def _applies(row: Row, class_name: str) -> bool:
    """A row qualified ``(promote)`` is about the class whose name starts with that word."""
    return row.only is None or class_name.lower().startswith(row.only.strip().lower())


@pytest.mark.parametrize(("row", "names"), ROWS, ids=[f"{r.page}:{r.line}:{r.name}" for r, _ in ROWS])
def test_argument_row_matches_the_code(row: Row, names: list[str]) -> None:
    where = f"{row.page}:{row.line} `{row.name}`"
    classes = [CLASSES[n] for n in names if _applies(row, n)]
    assert classes, f"{where}: ({row.only}) names no class of the page ({names})"
    for cls in classes:
        params = arguments(cls)
        if row.name not in params:
            assert row.name in _BASE_PARAMS, f"{where}: {cls.__name__} has no argument {row.name!r}"
            assert not row.templated, f"{where}: {row.name} is not templated"
            is_literal, value = _literal(row.default)
            if is_literal:
                actual = getattr(_instance(cls), row.name)
                assert actual == value, (
                    f"{where}: documented default {value!r}, {cls.__name__} sets {actual!r}"
                )
            continue
        assert row.templated == (row.name in cls.template_fields), (
            f"{where}: templated column says {'yes' if row.templated else 'no'}, "
            f"{cls.__name__}.template_fields = {tuple(cls.template_fields)}"
        )
        default = params[row.name].default
        if default is inspect.Parameter.empty:
            assert row.default == "required", (
                f"{where}: {cls.__name__} requires it; the docs say {row.default}"
            )
            continue
        is_literal, value = _literal(row.default)
        if is_literal:
            same = (
                value is default if isinstance(value, bool) or isinstance(default, bool) else value == default
            )
            assert same, f"{where}: documented default {value!r}, signature default {default!r}"
        else:
            assert default is None, (
                f"{where}: documented default {row.default!r} is not the signature default {default!r}"
            )


def _doc_texts() -> dict[str, str]:
    return {p.relative_to(REPO).as_posix(): p.read_text() for p in sorted(DOCS.rglob("*.md"))} | {
        "README.md": (REPO / "README.md").read_text()
    }


CONFIG = [
    (section, option, spec)
    for section, body in INFO.get("config", {}).items()
    for option, spec in body["options"].items()
]


@pytest.mark.parametrize(("section", "option", "spec"), CONFIG, ids=[f"{s}.{o}" for s, o, _ in CONFIG])
def test_config_option_is_documented_with_its_default(section: str, option: str, spec: dict) -> None:
    pages = {path for path, text in _doc_texts().items() if (section, option) in mentioned_options(text)}
    assert pages, f"[{section}] {option} is documented nowhere in docs/ or README.md"
    default = spec.get("default")
    if default is not None:
        texts = _doc_texts()
        assert any(str(default) in texts[p] for p in pages), (
            f"[{section}] {option}: none of {sorted(pages)} states its default {default!r}"
        )


def mentioned_options(text: str) -> set[tuple[str, str]]:
    """``(section, option)`` pairs a page mentions: ``[section]`` blocks of ini-style code blocks,
    inline ``[section] option``, and ``AIRFLOW__SECTION__OPTION`` environment variables."""
    found = set()
    fence, section = None, None
    for line in text.splitlines():
        if fence is None and (m := re.match(r"\s*(`{3,}|~{3,})", line)):
            fence, section = m[1], None
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is not None and (m := re.fullmatch(r"\s*\[(\w+)\]\s*", line)):
            section = m[1]
        elif fence is not None and section and (m := re.match(r"\s*(\w+)\s*=", line)):
            found.add((section, m[1]))
    found |= set(re.findall(r"`\[(\w+)\] (\w+)`", text))
    found |= {(s.lower(), o.lower()) for s, o in re.findall(r"AIRFLOW__([A-Z0-9]+)__(\w+)", text)}
    return found


def test_every_documented_config_option_exists() -> None:
    declared = {(s, o) for s, o, _ in CONFIG}
    ours = set(INFO.get("config", {}))
    unknown = {
        (path, f"[{s}] {o}")
        for path, text in _doc_texts().items()
        for s, o in mentioned_options(text)
        if s in ours and (s, o) not in declared
    }
    assert not unknown, f"options the docs mention that provider_info does not declare: {sorted(unknown)}"


def test_option_mentions_are_found() -> None:
    text = "```bash\nx = 1\n```\n[mlops]\nnot_code = 1\n```ini\n[mlops]\nregistry_pool = a\nother = b\n```\n"
    text += "or `[mlops] third`, AIRFLOW__MLOPS__FOURTH=1"
    assert mentioned_options(text) == {("mlops", o) for o in ("registry_pool", "other", "third", "fourth")}


CONNECTIONS = [(c["connection-type"], c) for c in INFO["connection-types"]]
GUIDE = DOCS / "guide" / "connections.md"


def _section(conn: dict) -> str:
    """The connections guide's section (``## ...``) about ``conn``: its title names the type or its
    default connection id."""
    hook_module, _, hook_name = conn["hook-class-name"].rpartition(".")
    hook = getattr(importlib.import_module(hook_module), hook_name)
    for part in re.split(r"^## ", GUIDE.read_text(), flags=re.MULTILINE)[1:]:
        title = part.splitlines()[0]
        if f"`{hook.default_conn_name}`" in title or f"`{conn['connection-type']}`" in title:
            return part
    pytest.fail(f"{GUIDE.name} has no section titled with `{hook.default_conn_name}`")


@pytest.mark.parametrize(("conn_type", "conn"), CONNECTIONS, ids=[t for t, _ in CONNECTIONS])
def test_connection_extras_match(conn_type: str, conn: dict) -> None:
    section = _section(conn)
    declared = set(conn.get("conn-fields", {}))
    documented = set(re.findall(r"[Ee]xtras? `(\w+)`", section))
    documented |= {
        k
        for m in re.finditer(r"[Ee]xtras ((?:`\w+`(?:, | and | or )?)+)", section)
        for k in re.findall(r"`(\w+)`", m[1])
    }
    assert declared <= documented, (
        f"{conn_type}: extras not documented in {GUIDE.name}: {sorted(declared - documented)}"
    )
    assert documented <= declared, (
        f"{conn_type}: {GUIDE.name} names extras the form does not have: {sorted(documented - declared)}"
    )
    source = inspect.getsource(importlib.import_module(conn["hook-class-name"].rpartition(".")[0]))
    unread = {k for k in declared if f'"{k}"' not in source}
    assert not unread, f"{conn_type}: declared extras the hook never reads: {sorted(unread)}"
    for field, label in conn["ui-field-behaviour"].get("relabeling", {}).items():
        assert label in section, (
            f"{conn_type}: the form labels {field} {label!r}; {GUIDE.name} does not say so"
        )
