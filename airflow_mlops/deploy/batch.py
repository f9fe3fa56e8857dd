"""Batch scoring on the Airflow worker: the embedded default target, no servers.

The registry is this target's traffic: every scoring run reads ``@champion``, ``@canary`` and the
canary's share from the rollout history, so :meth:`BatchTarget.apply` has nothing to call. A
scoring run (:meth:`BatchTarget.score`) reads a table, puts each row on an arm by the hash of its
id column (:func:`airflow_mlops.core.canary.on_canary`, salted with the rollout's id: an entity
stays on its arm for the whole rollout), scores each arm with its version and writes
``<predictions>/<batch>.parquet``: the id, ``prediction``, ``model_version`` and ``arm`` of every
row, the rollout's id in the file's metadata.

The analysis (:meth:`BatchTarget.outcomes`) joins the predictions of the running rollout with
their outcomes, which arrive later: ``outcomes`` is a URI template with ``{batch}``, e.g.
``s3://bucket/labels/{batch}.parquet``, a table of the id column and the label. A batch whose
outcomes do not exist yet is skipped until they do.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.canary import CANARY, CONTROL, ArmStats, Traffic, arm_stats, on_canary, outcome_values
from airflow_mlops.core.data import _fs_and_path, is_local
from airflow_mlops.deploy.base import DeploymentTarget
from airflow_mlops.exceptions import DataInputError

if TYPE_CHECKING:
    from airflow_mlops.core.registry.rollout import RolloutState

ROLLOUT_KEY = b"mlops.rollout"
PREDICTION, VERSION, ARM = "prediction", "model_version", "arm"


class BatchTarget(DeploymentTarget):
    """Scores tables on the worker with the versions the registry says are serving.

    ``target_config`` keys (see docs/deploy/batch.md): ``predictions`` (required: the folder the
    predictions are written to, local or object storage), ``id_column`` (required: the entity id
    that decides the arm), ``conn_id`` (Airflow connection for object storage).
    """

    name = "batch"
    title = "batch"
    config_keys = frozenset({"predictions", "id_column", "conn_id"})

    def __init__(self, config: dict[str, Any] | None, log: Any, **kwargs: Any) -> None:
        super().__init__(config, log, **kwargs)
        self.require("predictions", "id_column")
        self.root = str(self.config["predictions"]).rstrip("/")
        self.id_column = str(self.config["id_column"])

    def apply(self, traffic: Traffic) -> None:
        self.log.info(
            "Batch target: from now on scoring runs serve %s (read from the registry)", traffic.describe()
        )

    # ------------------------------------------------------------------ scoring

    def score(self, data: str, batch: str, state: RolloutState) -> dict[str, Any]:
        """Score the table at ``data`` as batch ``batch`` with what ``state`` says serves.

        :return: ``{predictions, batch, rows, rollout, traffic, arms: {arm: {version, rows}}, seconds}``
        """
        import numpy as np

        from airflow_mlops.io import load_table

        began = time.monotonic()
        traffic = state.traffic()
        if traffic.control is None:
            raise DataInputError(f"{self.model_name} has no @{state.champion_alias}: nothing serves it yet")
        df = load_table(data, conn_id=self.config.get("conn_id"), what="scoring data")
        if self.id_column not in df.columns:
            raise DataInputError(
                f"scoring data {data} has no id column {self.id_column!r} (target_config['id_column']); "
                f"columns: {list(df.columns)}"
            )
        rollout = state.rollout_id if traffic.canary else None
        ids = df[self.id_column]
        canary = (
            on_canary(ids.to_numpy(), traffic.share, rollout) if rollout else np.zeros(len(df), dtype=bool)
        )
        summary: dict[str, Any] = {}
        predicted: dict[str, Any] = {}
        for arm, version, chosen in ((CONTROL, traffic.control, ~canary), (CANARY, traffic.canary, canary)):
            summary[arm] = {"version": version, "rows": int(chosen.sum())}
            if version is None or not chosen.any():
                continue
            model = self.need_mlflow().load_model(self.model_name, version)
            label = f"{self.model_name} v{version}"
            try:
                features = _arm_rows(model, df, chosen, f"scoring data {data}", label)
                predicted[arm] = _as_array(model.predict(features))
            except ValueError as err:
                raise DataInputError(f"cannot score {data} with {label}: {err}") from err
        out = _table(ids, canary, predicted, traffic)
        uri = self._write(out, batch, rollout, traffic)
        seconds = time.monotonic() - began
        self.log.info(
            "Scored %d rows of %s as batch %s with %s (%s) in %.1fs -> %s",
            len(out),
            data,
            batch,
            traffic.describe(),
            ", ".join(f"{a}: {s['rows']} rows" for a, s in summary.items()),
            seconds,
            uri,
        )
        return {
            "predictions": uri,
            "batch": batch,
            "rows": len(out),
            "rollout": rollout,
            "traffic": traffic.to_dict(),
            "arms": summary,
            "seconds": round(seconds, 3),
        }

    def predictions_uri(self, batch: str) -> str:
        if "/" in batch or batch in ("", ".", ".."):
            raise DataInputError(f"batch {batch!r} must be a plain name (it names the predictions file)")
        return f"{self.root}/{batch}.parquet"

    def _write(self, out: Any, batch: str, rollout: str | None, traffic: Traffic) -> str:
        import json

        import pyarrow.parquet as pq

        uri = self.predictions_uri(batch)
        table = out
        meta = dict(table.schema.metadata or {})
        meta[ROLLOUT_KEY] = json.dumps({"rollout": rollout, "traffic": traffic.to_dict()}).encode()
        table = table.replace_schema_metadata(meta)
        fs, path = _fs_and_path(uri, self._options(uri))
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        with fs.open(path, "wb") as fh:
            # no min/max statistics for the version and arm columns: two values each, nothing for a
            # reader to skip by, and their string statistics were a third of the write
            pq.write_table(table, fh, write_statistics=[self.id_column, PREDICTION])
        return "file://" + path if is_local(uri) else uri

    def _options(self, uri: str) -> dict[str, Any] | None:
        from airflow_mlops.io import storage_options

        return storage_options(uri, self.config.get("conn_id"))

    # ------------------------------------------------------------------ analysis

    def batches(self, rollout: str) -> list[tuple[str, str]]:
        """``(batch, path)`` of the predictions written during ``rollout``, oldest name first."""
        import json

        import pyarrow.parquet as pq

        fs, root = _fs_and_path(self.root, self._options(self.root))
        if not fs.exists(root):
            return []
        found = []
        for path in sorted(fs.glob(f"{root}/*.parquet")):
            with fs.open(path, "rb") as fh:
                meta = pq.read_schema(fh).metadata or {}
            info = json.loads(meta.get(ROLLOUT_KEY, b"{}"))
            if info.get("rollout") == rollout:
                found.append((os.path.basename(path)[: -len(".parquet")], path))
        return found

    def outcomes(self, state: RolloutState, source: str, *, target: str, metric: str) -> dict[str, ArmStats]:
        """Join each batch of the running rollout with ``source.format(batch=...)`` by id."""
        import pandas as pd

        from airflow_mlops.io import load_table

        if "{batch}" not in source:
            raise DataInputError(f"outcomes {source!r} must name the batch: a URI template with {{batch}}")
        totals = {CONTROL: ArmStats(), CANARY: ArmStats()}
        for batch, path in self.batches(state.rollout_id):
            uri = source.format(batch=batch)
            fs, labels_path = _fs_and_path(uri, self._options(uri))
            if not fs.exists(labels_path):
                self.log.info("Batch %s: no outcomes at %s yet; skipped", batch, uri)
                continue
            labels = load_table(uri, conn_id=self.config.get("conn_id"), what="outcomes")
            missing = [c for c in (self.id_column, target) if c not in labels.columns]
            if missing:
                raise DataInputError(f"outcomes {uri} lacks columns {missing}; it has {list(labels.columns)}")
            predicted = pd.read_parquet(path, columns=[self.id_column, PREDICTION, ARM], filesystem=fs)
            labels = labels[[self.id_column, target]].dropna().drop_duplicates(self.id_column, keep="last")
            joined = predicted.merge(labels, on=self.id_column, how="inner")
            stats = arm_stats(joined[ARM], outcome_values(metric, joined[target], joined[PREDICTION]))
            self.log.info(
                "Batch %s: %d predictions, %d labelled (control %d, canary %d)",
                batch,
                len(predicted),
                len(joined),
                stats[CONTROL].n,
                stats[CANARY].n,
            )
            totals = {arm: totals[arm] + stats[arm] for arm in totals}
        return totals


def _table(ids: Any, canary: Any, predicted: dict[str, Any], traffic: Traffic) -> Any:
    """The predictions as an Arrow table: id, prediction, model_version and arm per row, built
    column-wise (versions and arms decoded from one small dictionary each: no per-row Python)."""
    import numpy as np
    import pyarrow as pa

    codes = canary.astype(np.int8)
    parts = [predicted[arm] for arm in (CONTROL, CANARY) if arm in predicted]
    prediction = np.empty(len(codes), dtype=np.result_type(*parts) if parts else object)
    for arm, chosen in ((CONTROL, ~canary), (CANARY, canary)):
        if arm in predicted:
            prediction[chosen] = predicted[arm]

    def decoded(values: list[str | None]) -> Any:
        return pa.DictionaryArray.from_arrays(
            pa.array(codes), pa.array(values, pa.string())
        ).dictionary_decode()

    return pa.table(
        {
            ids.name: pa.Array.from_pandas(ids.reset_index(drop=True)),
            PREDICTION: pa.array(prediction),
            VERSION: decoded([traffic.control, traffic.canary]),
            ARM: decoded([CONTROL, CANARY]),
        }
    )


def _arm_rows(model: Any, df: Any, chosen: Any, what: str, label: str) -> Any:
    """The rows of ``df`` an arm scores, in the columns its model reads (``align_features``), cut
    in the cheaper order: the rows first for a small arm, the columns first for a large one, and
    no row cut for an arm that takes every row."""
    import numpy as np

    from airflow_mlops.core.metrics import align_features

    if chosen.all():
        return align_features(model, df, what, model_label=label)
    rows = np.flatnonzero(chosen)
    features = getattr(model, "feature_names_in_", None)
    read = len(df.columns) if features is None else len(features)
    if len(rows) * len(df.columns) < len(df) * read:
        return align_features(model, df.iloc[rows], what, model_label=label)
    return align_features(model, df, what, model_label=label).iloc[rows]


def _as_array(pred: Any) -> Any:
    import numpy as np

    values = np.asarray(pred)
    return values.ravel() if values.ndim > 1 and values.shape[1] == 1 else values
