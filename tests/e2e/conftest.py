"""One ``airflow standalone`` and one Chromium for all end-to-end tests; artefacts of failures.

The UI test runs first: its two runs make the first champion and the retrained one, which the
plugin test then finds in the model page's history (and rolls back); the form-trust test, which
creates no run, comes last. Run alone, the plugin test makes them itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.stack import FAILURE, Standalone, start_standalone, stop_standalone
from tests.e2e.system import ensure_system

_ORDER = ("test_ui.py", "test_plugin.py", "test_form_trust.py")
_FAILED: list[str] = []
_FAILED_KEY = pytest.StashKey[bool]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The e2e tests in ``_ORDER``, in their places; nothing else moves."""
    slots = [i for i, item in enumerate(items) if item.path.parent.name == "e2e" and item.path.name in _ORDER]
    ordered = sorted((items[i] for i in slots), key=lambda item: _ORDER.index(item.path.name))
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and item.path.parent.name == "e2e":
        _FAILED.append(item.nodeid)
        item.stash.setdefault(_FAILED_KEY, True)
    return report


@pytest.fixture(scope="package")
def standalone() -> Iterator[Standalone]:
    shutil.rmtree(FAILURE, ignore_errors=True)  # a previous session's failure must not mislead
    sa = start_standalone()
    try:
        yield sa
    finally:
        stop_standalone(sa, keep_logs=bool(_FAILED))


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    ensure_system("chromium")
    from playwright.sync_api import sync_playwright

    from tests.e2e.stack import CHROMIUM_ARGS

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def pages(request: pytest.FixtureRequest) -> Iterator[list]:
    """Pages a test opens (append them); on failure each one's screenshot and HTML are kept."""
    opened: list = []
    yield opened
    if request.node.stash.get(_FAILED_KEY, False):
        FAILURE.mkdir(parents=True, exist_ok=True)
        name = request.node.name
        for i, page in enumerate(opened):
            try:
                page.screenshot(path=str(FAILURE / f"{name}-{i}.png"), full_page=True)
                (FAILURE / f"{name}-{i}.html").write_text(f"<!-- {page.url} -->\n{page.content()}")
            except Exception as err:  # a closed page: keep what we can
                (FAILURE / f"{name}-{i}.txt").write_text(f"{type(err).__name__}: {err}")
    for page in opened:
        try:
            page.context.close()
        except Exception:
            pass
