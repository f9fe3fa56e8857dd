"""The embedded demo: the whole continuous-training loop on a laptop, with no servers.

``make demo`` runs this script. It uses a local Airflow home (SQLite, ``./.airflow`` by default)
and the embedded MLflow store beside it (``sqlite:///<home>/mlflow.db``), generates the demo churn
stream (``include/demo/data.py``: daily batches, a drift on a known date), and runs the reference
DAGs in ``dags/`` one after the other with ``dag.test()`` (what ``airflow dags test`` runs; here in
one process, so Airflow, MLflow, GX and Evidently are imported once), as a scheduler would have
run them:

1. ``mlops_continuous_training`` on the initial data -> the first champion;
2. ``mlops_drift_monitor`` on a clean window -> no drift, no retraining;
3. ``mlops_drift_monitor`` on the first drifted window -> drift detected, Asset event emitted;
4. ``mlops_continuous_training`` on the drifted window (what the event starts) -> evaluated
   against the champion on the next day's data -> promoted;
   In this act the training DAG gates the champion on a canary (``MLOPS_CANARY_GATE``): the new
   version becomes ``@challenger``;
5. ``mlops_deploy``, day by day, on the batch target: v2 goes out to 10 % of the customers, holds
   on the next day's outcomes, is ramped to 100 % and becomes ``@champion``; then a
   deliberately worse candidate (trained on the old data, forced past its evaluation) goes out as
   a canary, the next analysis catches it and all traffic returns to the champion;
6. ``mlops_rollback`` -> the previous champion is back.

Then it prints the story with the numbers and writes it as JSON (``<home>/demo/summary.json``).
The MLflow store, the data and the reports of a previous demo run are replaced; the Airflow
database is migrated once and kept.

Usage: ``python include/demo/run.py [--home DIR]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODEL = "churn"
ALIAS = "champion"
ID_COLUMN = "customer_id"
GATE = {"MLOPS_CANARY_GATE": "true"}
"""The environment of the training runs whose new version must earn the champion on a canary."""
FORCING = {**GATE, "AIRFLOW__MLOPS__FORCE_PROMOTE_USERS": "dag_test"}
"""The forced candidate's run: a forced promotion waits for a human unless the deployment lets the
triggering user force alone; ``dag.test()`` runs as ``dag_test``, which only this run's
deployment settings allow (docs/security.md, S7)."""
DEPLOY_CONF = {"steps": "10,100"}
"""The demo's rollout plan, one of the DAG's allowed plans: 10 %, then all traffic (the default
10,50,100 takes one more day per rollout, and the story tells two rollouts in the four days after
the retraining)."""


def _load(name: str) -> Any:
    """A module beside this script (this folder is not a package, and a test loads this file by path)."""
    spec = importlib.util.spec_from_file_location(f"mlops_demo_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LocalAirflow = _load("local_airflow").LocalAirflow


class Demo(LocalAirflow):
    def __init__(self, home: Path, dags_folder: Path = REPO / "dags", quiet: bool = False) -> None:
        super().__init__(home, dags_folder, home / "demo" / "logs")
        self.quiet = quiet
        self.data_root = home / "demo-data"
        self.out = home / "demo"
        self.started = time.monotonic()

    # ------------------------------------------------------------------ environment

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The local Airflow's environment, with the demo's data, model and canary settings."""
        return super().env(
            {
                "MLOPS_DATA_ROOT": str(self.data_root),
                "MLOPS_MODEL_NAME": MODEL,
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                "GX_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1",
                "PYTHONWARNINGS": "ignore",
                # the deployment act: days pass in seconds here, and a 10 % canary of 2,000
                # customers has about 200 outcomes a day
                "MLOPS_CANARY_BAKE_MINUTES": "0",
                "MLOPS_CANARY_MIN_SAMPLES": "150",
                **(extra or {}),
            }
        )

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(text, flush=True)

    def setup(self) -> None:
        """Migrate the Airflow database once; replace the previous demo's MLflow store and data."""
        self.home.mkdir(parents=True, exist_ok=True)
        for name in ("mlflow.db", "mlartifacts", "demo-data", "reports", "demo"):
            path = self.home / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        self.logs.mkdir(parents=True)
        self.migrate_once(self.say)
        self.activate()

    # ------------------------------------------------------------------ the story

    def run(self) -> dict[str, Any]:
        data = _load("data")
        self.setup()
        manifest = data.generate(self.data_root)
        windows = manifest["windows"]
        drift_index = next(i for i, w in enumerate(windows) if w["drifted"])
        clean, drifted = windows[drift_index - 1], windows[drift_index]
        first_day = dt.date.fromisoformat(windows[0]["date"])
        self.say(
            f"Demo stream: {len(windows)} daily windows of {windows[0]['rows']} customers from {windows[0]['date']}, "
            f"initial training data {manifest['train_rows']} rows; the market changes on {manifest['drift_date']}."
        )
        self.say(
            f"Airflow home {self.home} (SQLite); MLflow sqlite:///{self.home / 'mlflow.db'}; DAGs from {self.dags_folder}"
        )
        self.say()

        # 1. the first champion
        initial_date = (first_day - dt.timedelta(days=1)).isoformat()
        self.say(f"[1] {initial_date}  mlops_continuous_training on the initial data ...")
        first = self.run_dag(
            "1-initial-training",
            "mlops_continuous_training",
            initial_date,
            {"train_data": manifest["train"], "eval_data": manifest["eval"], "reason": "initial training"},
        )
        self.say_training(first)

        # 2-3. the monitor on a clean window, then on the drifted one
        checks = []
        retrain = None
        for number, window in ((2, clean), (3, drifted)):
            label = "drifted" if window["drifted"] else "clean"
            self.say(f"[{number}] {window['date']}  mlops_drift_monitor on the day's window ({label}) ...")
            check = self.run_dag(f"{number}-monitor-{window['date']}", "mlops_drift_monitor", window["date"])
            check["window"] = window
            checks.append(check)
            verdict = self.say_monitor(check)
            if verdict.get("retraining_triggered") and retrain is None:
                # The scheduler would start mlops_continuous_training on the Asset event; here
                # the demo starts it the same way: with the window that drifted as training data
                # and the next day's labelled batch as the evaluation data neither model has seen.
                nxt = windows[windows.index(window) + 1]
                reason = self.trigger_reason(check, window["date"])
                self.say(f"[4] {nxt['date']}  mlops_continuous_training, started by the event: {reason} ...")
                retrain = self.run_dag(
                    "4-retraining",
                    "mlops_continuous_training",
                    nxt["date"],
                    {
                        "train_data": _training_data(manifest, windows.index(window), self.data_root),
                        "eval_data": nxt["path"],
                        "reason": reason,
                    },
                    env=GATE,
                )
                retrain["train_window"], retrain["eval_window"] = window["date"], nxt["date"]
                self.say_training(retrain)
        if retrain is None:
            raise SystemExit("demo: the drifted window did not trigger a retraining; see the monitor logs")

        # 5. the deployment act: canary of v2, then of a worse candidate
        deploy = self.deployment_act(manifest, windows[drift_index + 1 :])

        # 6. roll back
        last = windows[-1]
        self.say(f"[6] {last['date']}  mlops_rollback (manual) ...")
        back = self.run_dag(
            "6-rollback",
            "mlops_rollback",
            f"{last['date']}T12:00:00+00:00",
            {"model_name": MODEL, "version": None, "reason": "demo: roll back to the previous champion"},
        )
        moved = back["xcom"].get("rollback.return_value") or {}
        self.say(f"    @{ALIAS}: v{moved.get('previous_version')} -> v{moved.get('version')} (rolled back)")

        summary = self.summarize(manifest, first, checks, retrain, back, drift_index)
        summary["deployment"] = deploy
        self.print_story(summary)
        path = self.out / "summary.json"
        path.write_text(json.dumps(summary, indent=2, default=str))
        self.say(f"Summary: {path}")
        return summary

    # ------------------------------------------------------------------ the deployment act

    def deployment_act(self, manifest: dict[str, Any], days: list[dict[str, Any]]) -> dict[str, Any]:
        """``mlops_deploy`` once a day on the batch target: the canary of the retrained version,
        then (after a worse candidate is forced past its evaluation) the canary that fails."""
        import pandas as pd

        scoring = self.data_root / "scoring"
        scoring.mkdir(exist_ok=True)
        for window in days:  # the same customer base every day: the id decides the arm
            df = pd.read_parquet(window["path"])
            df.insert(0, ID_COLUMN, [f"C{i:05d}" for i in range(len(df))])
            df.to_parquet(scoring / f"{window['date']}.parquet", index=False)
        runs, forced = [], None
        # day 0: v2 starts at 10 %; day 1: it holds and takes all traffic; then the worse candidate;
        # day 2: it starts at 10 %; day 3: the analysis catches it
        for number, window in enumerate(days[:4]):
            if number == 2:
                date = days[1]["date"]
                self.say(
                    f"[5] {date}  mlops_continuous_training: a candidate trained on the old data, forced ..."
                )
                forced = self.run_dag(
                    "5-forced-candidate",
                    "mlops_continuous_training",
                    f"{date}T12:00:00+00:00",
                    {
                        "train_data": manifest["train"],
                        "eval_data": days[1]["path"],
                        "force_promote": True,
                        "reason": "demo: a candidate trained on the old data, forced past its evaluation",
                    },
                    env=FORCING,
                )
                self.say_forced(forced)
            self.say(f"[5] {window['date']}  mlops_deploy (batch target, daily) ...")
            run = self.run_dag(f"5-deploy-{window['date']}", "mlops_deploy", window["date"], DEPLOY_CONF)
            run["date"] = window["date"]
            runs.append(run)
            self.say_deploy(run)
        return {"days": [self.deploy_day(run, scoring) for run in runs], "forced": _forced(forced)}

    def say_forced(self, run: dict[str, Any]) -> None:
        forced = _forced(run)
        self.say(
            f"    v{forced['version']} scores {_f(forced['accuracy'])} vs champion v{forced['champion']} "
            f"{_f(forced['champion_accuracy'])} -> {forced['decision']}; forced past it: @challenger is "
            f"v{forced['version']} ({run['seconds']:.0f} s)"
        )

    def say_deploy(self, run: dict[str, Any]) -> None:
        x = run["xcom"]
        started = x.get("start_canary.return_value")
        if started:
            self.say(
                f"    canary started: v{started['version']} on {started['share']:g} % of the customers "
                f"against @{ALIAS} v{started['control']}"
            )
        analysis = x.get("analyse.return_value") or {}
        if analysis.get("verdict"):
            reason = next(
                (r for r in analysis["reasons"] if "outcomes vs control" in r), analysis["reasons"][0]
            )
            self.say(f"    analysis: {analysis['verdict'].upper()}: {reason}")
        for task, words in (("step", "stepped up"), ("promote", "promoted"), ("abort", "rolled back")):
            move = x.get(f"{task}.return_value")
            if move:
                self.say(
                    f"    {words} the canary of v{move['version']}: now serving {_traffic(move['traffic'])}"
                    + (f"; @{ALIAS} is v{move['version']}" if task == "promote" else "")
                )
        score = x.get("score.return_value") or {}
        arms = ", ".join(
            f"v{a['version']} {a['rows']} ({arm})"
            for arm, a in (score.get("arms") or {}).items()
            if a["rows"]
        )
        self.say(f"    scored {score.get('rows')} customers: {arms} ({run['seconds']:.0f} s)")

    def deploy_day(self, run: dict[str, Any], scoring: Path) -> dict[str, Any]:
        """What served that day and how each arm did on the day's labels."""
        import pandas as pd

        x = run["xcom"]
        score = x.get("score.return_value") or {}
        predictions = pd.read_parquet(str(score["predictions"]).removeprefix("file://"))
        labels = pd.read_parquet(scoring / f"{run['date']}.parquet", columns=[ID_COLUMN, "label"])
        joined = predictions.merge(labels, on=ID_COLUMN)
        correct = joined["prediction"] == joined["label"]
        arms = {
            arm: {
                "version": str(group["model_version"].iloc[0]),
                "rows": len(group),
                "accuracy": float(correct[group.index].mean()),
            }
            for arm, group in joined.groupby("arm")
        }
        analysis = x.get("analyse.return_value") or {}
        moves = [t for t in ("start_canary", "step", "promote", "abort") if x.get(f"{t}.return_value")]
        return {
            "date": run["date"],
            "verdict": analysis.get("verdict"),
            "reasons": analysis.get("reasons"),
            "moves": moves,
            "traffic": score.get("traffic"),
            "arms": arms,
            "predictions": score.get("predictions"),
        }

    @staticmethod
    def trigger_reason(check: dict[str, Any], date: str) -> str:
        """What the monitor's events say, and on which day: the reason the retraining records.

        Each sensor's summary is what its Asset event carries, so the words are the reference
        DAG's own (:func:`airflow_mlops.core.evaluation.event_reason`).
        """
        from airflow_mlops.core import tags
        from airflow_mlops.core.evaluation import event_reason

        x = check["xcom"]
        emitted = [
            summary
            for summary, fired in (
                (x.get(f"data_drift.{tags.XCOM_DRIFT_SUMMARY}"), "drift_detected"),
                (x.get(f"model_performance.{tags.XCOM_PERFORMANCE_SUMMARY}"), "degraded"),
            )
            if summary and summary.get(fired)
        ]
        return f"{' and '.join(event_reason(summary) or 'an event' for summary in emitted)} on {date}"

    def say_training(self, run: dict[str, Any]) -> None:
        x = run["xcom"]
        gates = [x.get(f"validate_{w}_data.return_value") or {} for w in ("train", "eval")]
        trained = x.get("train.return_value") or {}
        record = x.get("evaluate.return_value") or {}
        promoted = x.get("promote.return_value") or {}
        evaluated = [g.get("evaluated") for g in gates]
        self.say(
            f"    quality gates passed ({evaluated[0]} and {evaluated[1]} expectations); "
            f"trained {trained.get('model_name')} v{trained.get('model_version')} on backend "
            f"{trained.get('backend')} ({run['seconds']:.0f} s for the run)"
        )
        cand = record.get("candidate") or {}
        champ = record.get("champion")
        line = f"    evaluation: candidate v{cand.get('version')} accuracy {_f(cand.get('metrics', {}).get('accuracy'))}"
        if champ:
            line += f" vs champion v{champ.get('version')} {_f(champ.get('metrics', {}).get('accuracy'))}"
        else:
            line += " (no champion yet)"
        self.say(f"{line} -> {record.get('decision')}")
        if promoted and promoted.get("alias", ALIAS) != ALIAS:
            self.say(
                f"    promoted v{promoted.get('version')} to @{promoted['alias']}: it earns @{ALIAS} on a canary"
            )
        elif promoted:
            prev = promoted.get("previous_version")
            self.say(
                f"    promoted v{promoted.get('version')} to @{ALIAS} (previous: {'v' + str(prev) if prev else 'none'})"
            )
        else:
            self.say(f"    not promoted (tasks: {run['tasks']})")

    def say_monitor(self, run: dict[str, Any]) -> dict[str, Any]:
        verdict = run["xcom"].get("verdict.return_value") or {}
        share = verdict.get("drift_share")
        drifted = verdict.get("drifted_columns") or []
        self.say(
            f"    drift share {_f(share, 2)} ({len(drifted)} columns drifted{': ' + ', '.join(drifted) if drifted else ''})"
            f" -> {'DRIFT' if verdict.get('drift_detected') else 'no drift'}; "
            f"{verdict.get('metric')} {_f(verdict.get('metric_value'))} vs baseline {_f(verdict.get('metric_baseline'))}"
            f" -> {'DEGRADED' if verdict.get('degraded') else 'holding up'}"
        )
        events = run["asset_events"]
        self.say(
            f"    {'retraining triggered: Asset events ' + ', '.join(events) if verdict.get('retraining_triggered') else 'no retraining'}"
            f" ({run['seconds']:.0f} s)"
        )
        return verdict

    # ------------------------------------------------------------------ numbers

    def mlflow_client(self) -> Any:
        import mlflow

        uri = f"sqlite:///{self.home / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    def champion_version(self) -> str:
        return str(self.mlflow_client().get_model_version_by_alias(MODEL, ALIAS).version)

    def history(self) -> list[dict[str, Any]]:
        """The alias history the registry operators record as tags on the registered model."""
        return _history(self.mlflow_client().get_registered_model(MODEL).tags)

    def summarize(self, manifest, first, checks, retrain, back, drift_index) -> dict[str, Any]:
        import warnings

        import mlflow.sklearn
        import pandas as pd

        warnings.filterwarnings(
            "ignore"
        )  # model loading scans modules; Airflow's deprecations are noise here

        first_version = str(first["xcom"]["promote.return_value"]["version"])
        new_version = str(retrain["xcom"]["promote.return_value"]["version"])
        champion_now = self.champion_version()

        mlflow_models = {}
        for version in (first_version, new_version):
            mlflow_models[version] = mlflow.sklearn.load_model(f"models:/{MODEL}/{version}")

        served_from = retrain["eval_window"]  # the first day the new champion served
        rows = []
        for window in manifest["windows"]:
            df = pd.read_parquet(window["path"])
            features, target = df.drop(columns=[manifest["target"]]), df[manifest["target"]]
            acc = {v: float((m.predict(features) == target).mean()) for v, m in mlflow_models.items()}
            serving = new_version if window["date"] >= served_from else first_version
            check = next((c for c in checks if c["window"]["date"] == window["date"]), None)
            verdict = (check or {}).get("xcom", {}).get("verdict.return_value") or {}
            rows.append(
                {
                    "date": window["date"],
                    "drifted": window["drifted"],
                    "champion": serving,
                    "accuracy": acc[serving],
                    "accuracy_by_version": acc,
                    "monitored": check is not None,
                    "drift_detected": verdict.get("drift_detected") if check else None,
                    "drift_share": verdict.get("drift_share") if check else None,
                    "degraded": verdict.get("degraded") if check else None,
                    "drift_report": verdict.get("drift_report") if check else None,
                }
            )
        post = [r for r in rows if r["drifted"]]
        history = self.history()
        canary_history = _history(self.mlflow_client().get_registered_model(MODEL).tags, "canary")
        moved = back["xcom"].get("rollback.return_value") or {}
        return {
            "home": str(self.home),
            "model": MODEL,
            "drift_date": manifest["drift_date"],
            "first_champion": first_version,
            "retrained_version": new_version,
            "champion_after_rollback": str(champion_now),
            "rollback": moved,
            "evaluation": retrain["xcom"].get("evaluate.return_value"),
            "post_drift_accuracy": {
                v: sum(r["accuracy_by_version"][v] for r in post) / len(post)
                for v in (first_version, new_version)
            },
            "windows": rows,
            "history": history,
            "canary_history": canary_history,
            "runs": [
                {
                    k: s[k]
                    for k in (
                        "step",
                        "dag_id",
                        "run_id",
                        "state",
                        "seconds",
                        "cpu_seconds",
                        "tasks",
                        "asset_events",
                        "log",
                    )
                }
                for s in self.steps
            ],
            "reports": {
                "quality": sorted(
                    str(p) for p in (self.home / "reports").rglob("*.html") if "quality" in p.parts
                ),
                "drift": sorted(
                    str(p) for p in (self.home / "reports").rglob("*.html") if "drift" in p.parts
                ),
            },
            "seconds": round(time.monotonic() - self.started, 1),
        }

    def print_story(self, s: dict[str, Any]) -> None:
        self.say()
        self.say(
            f"The champion day by day (accuracy on that day's labelled customers; drift from {s['drift_date']}):"
        )
        self.say(f"  {'date':<11} {'drift':<6} {'champion':<9} {'accuracy':>8}   monitor")
        for r in s["windows"]:
            note = ""
            if r["monitored"]:
                note = f"drift share {_f(r['drift_share'], 2)} -> " + (
                    "DRIFT, retrained" if r["drift_detected"] or r["degraded"] else "no drift, no retraining"
                )
            elif r["drifted"] and r["champion"] != s["first_champion"]:
                old = r["accuracy_by_version"][s["first_champion"]]
                note = f"(v{s['first_champion']} would score {_f(old)})"
            self.say(
                f"  {r['date']:<11} {'yes' if r['drifted'] else 'no':<6} v{r['champion']:<8} {_f(r['accuracy']):>8}   {note}"
            )
        post = s["post_drift_accuracy"]
        self.say(
            f"After the drift: v{s['retrained_version']} averages {_f(post[s['retrained_version']])} "
            f"where v{s['first_champion']} averages {_f(post[s['first_champion']])}."
        )
        self.say(f"@{ALIAS} history (tags on the registered model):")
        for event in s["history"]:
            previous = event.get("previous_version")
            self.say(
                f"  {event.get('action'):<8} v{event.get('version')} (previous: {'v' + str(previous) if previous else 'none'})"
                f"{' [forced]' if event.get('forced') else ''}: {event.get('reason')}"
            )
        deployment = s.get("deployment")
        if deployment:
            self.say(
                "The canary rollouts day by day (batch target; accuracy on that day's labelled customers):"
            )
            self.say(f"  {'date':<11} {'serving':<22} {'control':<16} {'canary':<16} moves")
            for day in deployment["days"]:
                arms = day["arms"]
                cells = [
                    f"v{arms[a]['version']} {_f(arms[a]['accuracy'])}" if a in arms else "-"
                    for a in ("control", "canary")
                ]
                moves = ", ".join(day["moves"]) or "-"
                self.say(
                    f"  {day['date']:<11} {_traffic(day['traffic']):<22} {cells[0]:<16} {cells[1]:<16} {moves}"
                )
            self.say("@canary history (tags on the registered model):")
            for event in s.get("canary_history", []):
                self.say(
                    f"  {event['action']:<16} v{event['version']} at {event['share']:g} % "
                    f"(control v{event['control']}): {str(event.get('reason'))[:100]}"
                )
        self.say(f"After the rollback @{ALIAS} is v{s['champion_after_rollback']} again.")
        self.say("Reports:")
        for kind in ("quality", "drift"):
            for path in s["reports"][kind]:
                self.say(f"  {kind:<8} file://{path}")
        self.say(f"Logs of each DAG run: {self.logs}")
        self.say(f"Done in {s['seconds']:.0f} s.")


def _training_data(manifest: dict[str, Any], upto: int, root: Path) -> str:
    """What the retraining after window ``upto`` trains on: the policy's training window
    (``airflow_mlops.policy``, what the DAGs read): one window's file, or a folder of several."""
    from airflow_mlops.policy import DEFAULT_POLICY, TRAINING_WINDOW_ALL

    windows = [w["path"] for w in manifest["windows"][: upto + 1]]
    n = DEFAULT_POLICY.training_windows
    parts = [manifest["train"], *windows] if n == TRAINING_WINDOW_ALL else windows[-int(n) :]
    if len(parts) == 1:
        return parts[0]
    folder = root / f"train-{manifest['windows'][upto]['date']}"
    folder.mkdir(exist_ok=True)
    for i, part in enumerate(parts):
        shutil.copyfile(part, folder / f"part-{i:03d}.parquet")
    return str(folder)


def _history(model_tags: dict[str, str], alias: str = ALIAS) -> list[dict[str, Any]]:
    from dataclasses import asdict

    from airflow_mlops.core.registry import parse_history

    return [asdict(event) for event in parse_history(model_tags, alias)]


def _traffic(traffic: dict[str, Any] | None) -> str:
    from airflow_mlops.core.canary import Traffic

    return Traffic.from_dict(traffic).describe() if traffic else "-"


def _forced(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    record = run["xcom"].get("evaluate.return_value") or {}
    champion = record.get("champion") or {}
    return {
        "version": str(run["xcom"]["train.return_value"]["model_version"]),
        "decision": record.get("decision"),
        "accuracy": (record.get("candidate") or {}).get("metrics", {}).get("accuracy"),
        "champion": champion.get("version"),
        "champion_accuracy": (champion.get("metrics") or {}).get("accuracy"),
        "challenger": (run["xcom"].get("promote.return_value") or {}).get("version"),
    }


def _f(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--home", default=str(REPO / ".airflow"), help="Airflow home for the demo (default ./.airflow)"
    )
    parser.add_argument(
        "--dags-folder",
        default=str(REPO / "dags"),
        help="the DAGs to run (default: the reference DAGs in dags/)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing; write the summary JSON only")
    args = parser.parse_args(argv)
    Demo(Path(args.home).resolve(), Path(args.dags_folder).resolve(), quiet=args.quiet).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
