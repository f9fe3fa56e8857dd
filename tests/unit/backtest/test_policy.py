"""The retraining policy: defaults, environment overrides, and errors that name the field."""

from __future__ import annotations

import pytest

from airflow_mlops.policy import DEFAULT_POLICY, ENV, PolicyError, RetrainingPolicy


def test_defaults_are_valid_and_train_with_the_target():
    policy = RetrainingPolicy()
    assert policy == DEFAULT_POLICY
    assert policy.training_params()["target"] == policy.target
    assert policy.drift_columns is None
    assert policy.feature_columns(["a", "b", policy.target]) == ["a", "b"]


def test_from_env_reads_every_documented_variable():
    env = {
        ENV["target"]: "churned",
        ENV["drift_share"]: "0.3",
        ENV["drift_columns"]: "a, b",
        ENV["label_drift"]: "true",
        ENV["max_drop"]: "0.05",
        ENV["training_windows"]: "3",
        ENV["thresholds"]: '{"f1": 0.5}',
        ENV["calendar_every"]: "6",
        ENV["refresh_growth"]: "2",
        ENV["regime_signals"]: "feature_drift, decay",
    }
    policy = RetrainingPolicy.from_env(env)
    assert policy.target == "churned"
    assert policy.drift_share == 0.3
    assert policy.drift_columns == ("a", "b")
    assert policy.label_drift is True
    assert policy.max_drop == 0.05
    assert policy.training_windows == 3
    assert policy.thresholds == {"f1": 0.5}
    assert policy.calendar_every == 6
    assert policy.refresh_growth == 2.0
    assert policy.regime_signals == ("feature_drift", "decay")
    assert policy.as_dict()["regime_signals"] == ["feature_drift", "decay"]
    assert policy.feature_columns(["x"]) == ["a", "b"]


def test_overrides_win_over_the_environment():
    policy = RetrainingPolicy.from_env({ENV["max_drop"]: "0.05"}, max_drop=0.2)
    assert policy.max_drop == 0.2


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({ENV["drift_share"]: "lots"}, "MLOPS_DRIFT_SHARE"),
        ({ENV["label_drift"]: "maybe"}, "MLOPS_LABEL_DRIFT"),
        ({ENV["training_windows"]: "0"}, "training_windows"),
        ({ENV["thresholds"]: "[1]"}, "MLOPS_THRESHOLDS"),
        ({ENV["drift_share"]: "1.5"}, "drift_share"),
        ({ENV["training_windows"]: "since_drift", ENV["max_training_windows"]: "0"}, "max_training_windows"),
        ({ENV["training_windows"]: "3", ENV["max_training_windows"]: "8"}, "fixed 3"),
        ({ENV["refresh_growth"]: "1"}, "refresh_growth"),
        ({ENV["regime_signals"]: "moon"}, "regime_signals"),
    ],
)
def test_bad_environment_values_name_the_variable_or_field(env, named):
    with pytest.raises(PolicyError, match=named):
        RetrainingPolicy.from_env(env)


def test_a_growing_window_and_its_cap_are_read_from_the_environment():
    policy = RetrainingPolicy.from_env(
        {ENV["training_windows"]: "since_drift", ENV["max_training_windows"]: "8"}
    )
    assert (policy.training_windows, policy.max_training_windows) == ("since_drift", 8)


def test_the_reference_dags_refuse_what_only_the_backtest_replays():
    assert DEFAULT_POLICY.for_dags() is DEFAULT_POLICY
    assert RetrainingPolicy(training_windows="all").for_dags().backtest_only() == []
    with pytest.raises(PolicyError, match="MLOPS_TRAINING_WINDOWS.*MLOPS_REFRESH_GROWTH.*backtest only"):
        RetrainingPolicy(training_windows="since_drift", refresh_growth=2.0).for_dags()
    with pytest.raises(PolicyError, match="MLOPS_MAX_TRAINING_WINDOWS"):
        RetrainingPolicy(training_windows="all", max_training_windows=4).for_dags()


def test_the_target_is_not_a_feature_drift_column():
    with pytest.raises(PolicyError, match="label_drift"):
        RetrainingPolicy(drift_columns=("a", "label"))


def test_a_decay_trigger_that_checks_nothing_is_refused():
    with pytest.raises(PolicyError, match="max_drop and min_value"):
        RetrainingPolicy(max_drop=None, min_value=None)


def test_policy_module_is_standard_library_only():
    import ast
    import sys
    from pathlib import Path

    import airflow_mlops.policy as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_importing_the_policy_and_the_backtest_package_is_light():
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, airflow_mlops.policy, airflow_mlops.backtest, airflow_mlops.core.retraining;"
        "heavy = ('pandas', 'numpy', 'mlflow', 'sklearn', 'scipy', 'pyarrow', 'airflow');"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
