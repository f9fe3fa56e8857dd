"""Reference training entrypoint for airflow-mlops (the contract of docs/training.md).

A standalone script: it needs pandas, scikit-learn, fsspec and mlflow only (not Airflow, not
airflow_mlops; see include/training/requirements.txt), so the same file runs unchanged in a subprocess on the Airflow worker, in
SageMaker script mode, in a Vertex AI custom job and in an Azure ML command job.

    python train.py --train <file-or-dir> [--validation <file-or-dir>]
                    [--params '<json>' | --params <file.json>] [--output-dir <dir>]

Inputs default from the environment so each cloud's conventions map onto the CLI:

* training data: ``--train`` or ``$SM_CHANNEL_TRAIN``
* validation data: ``--validation`` or ``$SM_CHANNEL_VALIDATION`` (optional)
* output: ``--output-dir`` or ``$SM_MODEL_DIR`` or ``$AIP_MODEL_DIR`` (``gs://`` is written
  locally then copied with fsspec) or ``./outputs``

Data is a parquet/CSV file or a folder of parquet/CSV parts. Params (JSON): ``target`` (default
``"label"``), ``task`` (``"classification"``, ``"regression"`` or ``"auto"``), ``model``
(``"random_forest"``, ``"logistic_regression"``/``"linear"``, ``"gradient_boosting"``), ``seed``,
optional ``features``/``drop`` column lists; every other key is a hyper-parameter of the model.
Extra ``--key value`` arguments (SageMaker passes hyper-parameters that way) are tolerated: those
that name a reserved key or a parameter of the model are used (``--params`` wins), the rest are
ignored with a warning.

Output: ``<out>/model/`` (an MLflow sklearn model of a full Pipeline: imputation, scaling and
one-hot encoding of the raw columns, then the estimator) and ``<out>/metrics.json`` (metrics on
the validation data, or on the training data when there is none).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

RESERVED = ("target", "task", "model", "seed", "features", "drop")
CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
DATA_SUFFIXES = (".parquet", ".pq", ".parq", ".csv", ".csv.gz", ".tsv")


class TrainingInputError(ValueError):
    """Bad input to the script; the message names the file, column or parameter."""


# ---------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--params", default=None, help="JSON object, or a path to a JSON file")
    parser.add_argument(
        "--output-dir",
        default=os.environ.get("SM_MODEL_DIR") or os.environ.get("AIP_MODEL_DIR") or "./outputs",
    )
    args, unknown = parser.parse_known_args(argv)
    return args, _extra_args(unknown)


def _extra_args(unknown: list[str]) -> dict[str, object]:
    """``--key value`` / ``--key=value`` pairs that are not ours: hyper-parameters, JSON-decoded."""
    extra: dict[str, object] = {}
    i = 0
    while i < len(unknown):
        token = unknown[i]
        if not token.startswith("--"):
            print(f"train.py: ignoring stray argument {token!r}", file=sys.stderr)
            i += 1
            continue
        key, sep, value = token[2:].partition("=")
        if not sep:
            if i + 1 < len(unknown) and not unknown[i + 1].startswith("--"):
                value = unknown[i + 1]
                i += 1
            else:
                value = "true"
        extra[key.replace("-", "_")] = _decode(value)
        i += 1
    return extra


def _decode(value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_params(raw: str | None) -> dict[str, object]:
    """``--params``: a JSON object, or the path of a JSON file holding one."""
    if not raw:
        return {}
    text = raw
    if not raw.lstrip().startswith("{"):
        if not os.path.isfile(raw):
            raise TrainingInputError(f"--params is neither a JSON object nor an existing file: {raw!r}")
        with open(raw, encoding="utf-8") as fh:
            text = fh.read()
    try:
        params = json.loads(text)
    except ValueError as err:
        raise TrainingInputError(f"--params is not valid JSON ({raw!r}): {err}") from err
    if not isinstance(params, dict):
        raise TrainingInputError(f"--params must be a JSON object, got {type(params).__name__}")
    return params


# ---------------------------------------------------------------- data


def _data_files(uri: str) -> list[str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        raise TrainingInputError(f"data not found: {uri}")
    if not fs.isdir(path):
        return [uri]
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    parts = sorted(
        prefix + p
        for p in fs.find(path)
        if p.lower().endswith(DATA_SUFFIXES) and not os.path.basename(p).startswith(("_", "."))
    )
    if not parts:
        raise TrainingInputError(f"folder {uri} holds no parquet or CSV files")
    return parts


def read_table(uri: str, what: str):
    import pandas as pd

    frames = []
    for part in _data_files(uri):
        lower = part.lower()
        try:
            if lower.endswith(".csv") or lower.endswith(".csv.gz") or lower.endswith(".tsv"):
                frames.append(pd.read_csv(part, sep="\t" if lower.endswith(".tsv") else ","))
            else:
                frames.append(pd.read_parquet(part))
        except Exception as err:
            raise TrainingInputError(f"cannot read {what} data {part}: {type(err).__name__}: {err}") from err
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(df) == 0:
        raise TrainingInputError(f"{what} data is empty (0 rows): {uri}")
    return df


def split_xy(df, target: str, features: list[str] | None, drop: list[str], what: str, uri: str):
    if target not in df.columns:
        raise TrainingInputError(
            f"{what} data {uri} has no target column {target!r}; columns: {list(df.columns)}"
        )
    if df[target].isna().any():
        raise TrainingInputError(f"{what} data {uri}: target column {target!r} has missing values")
    if features is None:
        features = [c for c in df.columns if c != target and c not in drop]
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise TrainingInputError(f"{what} data {uri} lacks feature columns {missing}")
    if not features:
        raise TrainingInputError(f"{what} data {uri} has no feature columns besides {target!r}")
    return df[features], df[target]


# ---------------------------------------------------------------- model


def resolve_task(task: str, y) -> str:
    import pandas as pd

    if task in ("classification", "regression"):
        return task
    if task != "auto":
        raise TrainingInputError(f"params.task must be classification, regression or auto, got {task!r}")
    if pd.api.types.is_float_dtype(y) and y.nunique() > 20:
        return "regression"
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y) and y.nunique() > 20:
        return "regression"
    return "classification"


def build_pipeline(X, task: str, model: str, hyper: dict[str, object], extra: dict[str, object], seed: int):
    """The full Pipeline: raw columns in (numeric imputed+scaled, others imputed+one-hot), estimator out.

    ``hyper`` (from ``--params``) must all be valid for the estimator; ``extra`` (stray ``--key
    value`` arguments) are applied when the estimator knows them and otherwise ignored.
    """
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    types = pd.api.types
    numeric = [c for c in X.columns if types.is_numeric_dtype(X[c]) and not types.is_bool_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    transformers = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                categorical,
            )
        )
    estimator = make_estimator(task, model, seed)
    known = estimator.get_params()
    for key, value in extra.items():
        if key in hyper:
            continue
        if key in known:
            hyper = {**hyper, key: value}
        else:
            print(f"train.py: ignoring argument --{key} (not a parameter of {model})", file=sys.stderr)
    try:
        estimator.set_params(**hyper)
    except ValueError as err:
        raise TrainingInputError(f"bad hyper-parameter for {model} ({task}): {err}") from err
    return Pipeline([("prepare", ColumnTransformer(transformers)), ("model", estimator)])


def make_estimator(task: str, model: str, seed: int):
    from sklearn import ensemble, linear_model

    if task == "classification":
        choices = {
            "random_forest": lambda: ensemble.RandomForestClassifier(random_state=seed),
            "gradient_boosting": lambda: ensemble.GradientBoostingClassifier(random_state=seed),
            "logistic_regression": lambda: linear_model.LogisticRegression(max_iter=1000, random_state=seed),
        }
        choices["linear"] = choices["logistic_regression"]
    else:
        choices = {
            "random_forest": lambda: ensemble.RandomForestRegressor(random_state=seed),
            "gradient_boosting": lambda: ensemble.GradientBoostingRegressor(random_state=seed),
            "linear": lambda: linear_model.Ridge(random_state=seed),
        }
    if model not in choices:
        raise TrainingInputError(
            f"params.model {model!r} is not available for {task}; choose one of {sorted(choices)}"
        )
    return choices[model]()


# ---------------------------------------------------------------- metrics
# The same definitions as airflow_mlops.core.metrics (kept standalone on purpose): two classes use
# the positive class (the later one in sort order), more classes use weighted averages.


def compute_metrics(pipeline, X, y, task: str) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    pred = pipeline.predict(X)
    if task == "regression":
        return {
            "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
            "mae": float(metrics.mean_absolute_error(y, pred)),
            "r2": float(metrics.r2_score(y, pred)),
        }
    classes = list(pipeline.classes_)
    binary = len(classes) == 2
    avg = {"average": "binary", "pos_label": classes[1]} if binary else {"average": "weighted"}
    out = {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "f1": float(metrics.f1_score(y, pred, zero_division=0, **avg)),
        "precision": float(metrics.precision_score(y, pred, zero_division=0, **avg)),
        "recall": float(metrics.recall_score(y, pred, zero_division=0, **avg)),
    }
    if hasattr(pipeline, "predict_proba") and len(set(y)) > 1:
        proba = pipeline.predict_proba(X)
        try:
            if binary:
                out["roc_auc"] = float(metrics.roc_auc_score(y == classes[1], proba[:, 1]))
            else:
                out["roc_auc"] = float(
                    metrics.roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=classes)
                )
        except ValueError as err:  # a class absent from y: no AUC, the rest still stands
            print(f"train.py: roc_auc not computed: {err}", file=sys.stderr)
    return out


# ---------------------------------------------------------------- output


def pip_requirements(serialization_format: str) -> list[str]:
    from importlib.metadata import version

    pkgs = ["mlflow", "scikit-learn", "pandas", "numpy", "scipy"]
    if serialization_format in ("skops", "cloudpickle"):
        pkgs.append(serialization_format)
    reqs = []
    for pkg in pkgs:
        try:
            reqs.append(f"{pkg}=={version(pkg)}")
        except Exception:
            reqs.append(pkg)
    return reqs


def serialization(pipeline) -> tuple[str, list[str] | None]:
    """skops (safe loading) where MLflow supports it, trusting exactly the types this pipeline holds:
    we built the object, and MLflow records the list in the model so loading needs nothing else."""
    import mlflow.sklearn

    if getattr(mlflow.sklearn, "SERIALIZATION_FORMAT_SKOPS", None) is None:
        return "cloudpickle", None
    import skops.io

    return "skops", sorted(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))) or None


def write_output(pipeline, X, metrics: dict[str, float], output_dir: str) -> str:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    remote = "://" in output_dir and not output_dir.startswith("file://")
    local_dir = tempfile.mkdtemp(prefix="train-output-") if remote else output_dir.removeprefix("file://")
    os.makedirs(local_dir, exist_ok=True)
    model_dir = os.path.join(local_dir, "model")
    if os.path.exists(model_dir):
        shutil.rmtree(model_dir)
    fmt, trusted = serialization(pipeline)
    # MLflow before 3.9 (no skops format) has no skops_trusted_types parameter: pass it only with skops
    skops_kwargs = {"skops_trusted_types": trusted} if fmt == "skops" else {}
    sample = X.head(100)
    mlflow.sklearn.save_model(
        pipeline,
        model_dir,
        serialization_format=fmt,
        signature=infer_signature(sample, pipeline.predict(sample)),
        pip_requirements=pip_requirements(fmt),
        **skops_kwargs,
    )
    with open(os.path.join(local_dir, "metrics.json"), "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=2, sort_keys=True)
    if remote:
        import fsspec

        fs, path = fsspec.core.url_to_fs(output_dir)
        fs.put(local_dir.rstrip("/") + "/", path.rstrip("/") + "/", recursive=True)
        print(f"train.py: copied output to {output_dir}")
    return local_dir


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    if not args.train:
        raise TrainingInputError("no training data: pass --train or set SM_CHANNEL_TRAIN")
    params = load_params(args.params)
    for key in RESERVED:
        if key in extra and key not in params:
            params[key] = extra.pop(key)
    target = str(params.get("target", "label"))
    seed = int(params.get("seed", 42))
    model = str(params.get("model", "random_forest"))
    features = params.get("features")
    drop = params.get("drop") or []
    for key, value in (("features", features), ("drop", drop)):
        if value is not None and not (isinstance(value, list) and all(isinstance(c, str) for c in value)):
            raise TrainingInputError(f"params.{key} must be a list of column names, got {value!r}")
    hyper = {k: v for k, v in params.items() if k not in RESERVED}

    train_df = read_table(args.train, "training")
    X, y = split_xy(train_df, target, features, drop, "training", args.train)
    task = resolve_task(str(params.get("task", "auto")), y)
    print(
        f"train.py: {len(X)} training rows, {X.shape[1]} features, target {target!r}, task {task}, model {model}"
    )

    import numpy as np

    np.random.seed(seed)
    pipeline = build_pipeline(X, task, model, hyper, extra, seed)
    pipeline.fit(X, y)

    if args.validation:
        val_df = read_table(args.validation, "validation")
        Xv, yv = split_xy(val_df, target, list(X.columns), [], "validation", args.validation)
        metrics = compute_metrics(pipeline, Xv, yv, task)
        print(f"train.py: validation metrics on {len(Xv)} rows: {json.dumps(metrics, sort_keys=True)}")
    else:
        metrics = compute_metrics(pipeline, X, y, task)
        print(f"train.py: no validation data; training metrics: {json.dumps(metrics, sort_keys=True)}")

    out = write_output(pipeline, X, metrics, args.output_dir)
    print(f"train.py: wrote {out}/model and {out}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
