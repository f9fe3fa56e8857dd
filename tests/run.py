"""Run the whole test suite; no collected test is a failure, not a pass (pytest exit code 5)."""

from __future__ import annotations

import sys

import pytest

if __name__ == "__main__":
    code = pytest.main(sys.argv[1:])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("error: no tests were collected", file=sys.stderr)
        code = 1
    sys.exit(int(code))
