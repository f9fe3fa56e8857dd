"""The gate's steps without Airflow: settings are checked before anything is read (no GX here)."""

from __future__ import annotations

import pytest

from airflow_mlops.core.quality.validate import validate_table


def test_validate_table_rejects_an_unknown_fail_on_before_reading_anything(tmp_path):
    # neither file exists: the setting is the first thing checked
    with pytest.raises(ValueError, match="fail_on must be one of critical, warning, any, got 'severe'"):
        validate_table(str(tmp_path / "nope.parquet"), str(tmp_path / "nope.json"), fail_on="severe")
