"""Fixtures of the unit tests."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def memory_folder():
    """A unique ``memory://`` folder: fsspec's in-memory filesystem, the stand-in for object storage."""
    import fsspec

    root = f"memory://unit-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)
