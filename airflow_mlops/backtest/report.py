"""A backtest's results: one JSON-able summary, a terminal table, and a self-contained HTML page.

Every figure is given per seed and as the mean over seeds. The HTML page has no external
resource (inline SVG plot, inline CSS), so it can be attached to a ticket or opened offline.
"""

from __future__ import annotations

import html
import math
from typing import Any

from airflow_mlops.core import retraining

COLORS = {"never": "#9e9e9e", "every": "#1f77b4", "calendar": "#2ca02c", "triggered": "#d62728"}


def summarize(
    runs: list[Any], *, policy: dict[str, Any], source: str, entrypoint: str, metric: str, seconds: float
) -> dict[str, Any]:
    """The JSON document of a backtest from its :class:`~airflow_mlops.backtest.replay.SeedRun` list."""
    from airflow_mlops.core.metrics import greater_is_better

    names = list(runs[0].policies)
    first = runs[0].policies[names[0]].records
    totals: dict[str, Any] = {}
    for name in names:
        per_seed = [r.policies[name].totals() for r in runs]
        totals[name] = {
            "mean": retraining.mean([s["mean"] for s in per_seed]),
            "retrainings": retraining.mean([s["retrainings"] for s in per_seed]),
            "promotions": retraining.mean([s["promotions"] for s in per_seed]),
            "training_seconds": retraining.mean([s["training_seconds"] for s in per_seed]),
            "feature_drift_windows": retraining.mean([s["feature_drift_windows"] for s in per_seed]),
            "label_drift_windows": retraining.mean([s["label_drift_windows"] for s in per_seed]),
            "decay_windows": retraining.mean([s["decay_windows"] for s in per_seed]),
            "per_seed": [{"seed": r.seed, **s} for r, s in zip(runs, per_seed, strict=True)],
        }
    windows = []
    for i, record in enumerate(first):
        entry: dict[str, Any] = {"window": record.window, "rows": record.rows, "policies": {}}
        for name in names:
            recs = [r.policies[name].records[i] for r in runs]
            entry["policies"][name] = {
                "value": retraining.mean([x.value for x in recs]),
                "values": [x.value for x in recs],
                "versions": [x.version for x in recs],
                "feature_drift_share": [x.feature_drift_share for x in recs],
                "drifted_columns": [x.drifted_columns for x in recs],
                "feature_drift": [x.feature_drift for x in recs],
                "label_drift": [x.label_drift for x in recs],
                "degraded": [x.degraded for x in recs],
                "retrain_reasons": [x.retrain_reasons for x in recs],
                "retrained": [x.retrained for x in recs],
                "training_start": [x.training_start for x in recs],
                "promoted": [x.promoted for x in recs],
                "training_seconds": [round(x.training_seconds, 2) for x in recs],
            }
        windows.append(entry)
    verdict = None
    if retraining.EVERY in names and retraining.TRIGGERED in names:
        v = retraining.compare_to_every(
            [{n: p.totals() for n, p in r.policies.items()} for r in runs],
            greater_is_better=greater_is_better(metric),
        )
        verdict = {
            "passed": v.passed,
            "mean_gap_points": v.mean_gap,
            "worst_seed_gap_points": v.worst_seed_gap,
            "retrain_ratio": v.retrain_ratio,
            "reasons": v.reasons,
        }
    return {
        "source": source,
        "entrypoint": entrypoint,
        "metric": metric,
        "policy": policy,
        "seeds": [r.seed for r in runs],
        "initial_model": [
            {"seed": r.seed, "version": r.initial_version, "training_seconds": round(r.initial_seconds, 2)}
            for r in runs
        ],
        "policies": names,
        "totals": totals,
        "windows": windows,
        "triggered_vs_every": verdict,
        "triggered_gap": triggered_gap(runs, metric),
        "ceiling": ceiling(runs, metric),
        "seconds": round(seconds, 1),
    }


GAP_PARTS = ("before the first signal", "windows that signalled", "after the first signal")


def gap_split(triggered: Any, every: Any, *, greater_is_better: bool = True) -> dict[str, float]:
    """Where one seed's triggered policy gains (> 0) or loses against ``every``, in points of the
    mean (metric x 100), as three parts of :data:`GAP_PARTS`: the windows before its first signal
    fired (nothing had changed that it could see), the windows whose signal fired (both served a
    model chosen before the change showed), and the other windows after the first signal. Over the
    windows both policies scored; when they scored every window, the parts add up to the gap of
    the means."""
    if len(triggered.records) != len(every.records):
        raise ValueError(f"{len(triggered.records)} windows compared with {len(every.records)}")
    pairs = [
        (t, e)
        for t, e in zip(triggered.records, every.records, strict=True)
        if math.isfinite(t.value) and math.isfinite(e.value)
    ]
    first = next((i for i, (t, _) in enumerate(pairs) if t.retrain_reasons), len(pairs))
    sign = 1.0 if greater_is_better else -1.0
    parts = dict.fromkeys(GAP_PARTS, 0.0)
    for i, (t, e) in enumerate(pairs):
        part = GAP_PARTS[0] if i < first else GAP_PARTS[1] if t.retrain_reasons else GAP_PARTS[2]
        parts[part] += sign * (t.value - e.value) / len(pairs) * 100
    return parts


def triggered_gap(runs: list[Any], metric: str) -> dict[str, Any] | None:
    """:func:`gap_split` per seed and its mean over the seeds; None unless ``every`` and
    ``triggered`` were both replayed."""
    from airflow_mlops.core.metrics import greater_is_better

    if not runs or not {retraining.EVERY, retraining.TRIGGERED} <= set(runs[0].policies):
        return None
    greater = greater_is_better(metric)
    per_seed = [
        {
            "seed": r.seed,
            **gap_split(
                r.policies[retraining.TRIGGERED], r.policies[retraining.EVERY], greater_is_better=greater
            ),
        }
        for r in runs
    ]
    return {
        "parts": list(GAP_PARTS),
        "mean": {k: retraining.mean([s[k] for s in per_seed]) for k in GAP_PARTS},
        "per_seed": per_seed,
    }


def gap_text(summary: dict[str, Any]) -> str | None:
    """One sentence: where the triggered policy gains or loses against ``every`` (mean of seeds)."""
    gap = summary.get("triggered_gap")
    if not gap:
        return None
    parts = ", ".join(f"{k} {gap['mean'][k]:+.2f}" for k in gap["parts"])
    return f"where triggered gains (+) or loses (-) against every, points of the mean: {parts}"


def ceiling(runs: list[Any], metric: str) -> dict[str, Any] | None:
    """The best mean any policy at this training window could reach with at most a quarter of
    every window's retrainings, promoting with hindsight exactly the candidates that pay off
    (:func:`retraining.hindsight_bound`); None unless the seeds were replayed with ``ceiling``.

    The budget is counted as the acceptance bar counts it: over all seeds (``mean``, the budget
    shared out among them), and per seed (``per_seed``, a quarter of that seed's)."""
    from airflow_mlops.core.metrics import greater_is_better

    if not runs or any(r.hindsight is None for r in runs):
        return None
    greater = greater_is_better(metric)
    spans = []
    for run in runs:
        first, last = min(run.hindsight), max(run.hindsight) + 1
        spans.append(range(first + 1, last + 1))  # the windows served; every retrains after all but the last
    every = sum(len(windows) - 1 for windows in spans)
    budget = int(every * retraining.MAX_RETRAIN_RATIO)
    curves, per_seed = [], []
    for run, windows in zip(runs, spans, strict=True):
        curve = retraining.hindsight_bound(
            run.hindsight, windows, min(budget, len(windows) - 1), greater_is_better=greater
        )
        curves.append(curve)
        k = min(int((len(windows) - 1) * retraining.MAX_RETRAIN_RATIO), len(curve) - 1)
        # curve[j]: the best with at most j retrainings, up to the budget of all seeds
        per_seed.append({"seed": run.seed, "retrainings": k, "mean": curve[k], "curve": curve})
    return {
        "mean": retraining.pooled_bound(curves, budget, greater_is_better=greater),
        "retrainings": budget,
        "every_retrainings": every,
        "per_seed": per_seed,
    }


def ceiling_text(summary: dict[str, Any]) -> str | None:
    """One sentence: the ceiling, and how it compares with ``every`` and ``triggered``."""
    from airflow_mlops.core.metrics import greater_is_better

    top = summary.get("ceiling")
    if not top:
        return None
    sign = 1.0 if greater_is_better(summary["metric"]) else -1.0
    text = (
        f"ceiling with hindsight: {_f(top['mean'])} with at most {top['retrainings']} of every window's "
        f"{top['every_retrainings']} retrainings over the seeds, promoting exactly the candidates that "
        "pay off (it knows the future: no policy deciding from the past can beat it)"
    )
    gaps = []
    for name in (retraining.EVERY, retraining.TRIGGERED):
        if name in summary["totals"]:
            gap = sign * (top["mean"] - summary["totals"][name]["mean"]) * 100
            gaps.append(f"{gap:+.2f} points vs {name}")
    seeds = ", ".join(f"seed {s['seed']} {_f(s['mean'])} ({s['retrainings']})" for s in top["per_seed"])
    return text + (f"; {', '.join(gaps)}" if gaps else "") + f"; per seed at a quarter of its own: {seeds}"


def _f(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def _signals(entry: dict[str, Any]) -> str:
    """What the triggered policy saw on this window, over the seeds."""
    p = entry["policies"].get(retraining.TRIGGERED)
    if p is None:
        return ""
    n = len(p["values"])
    parts = []
    for key, word in (("feature_drift", "drift"), ("label_drift", "target drift"), ("degraded", "decay")):
        hits = sum(bool(x) for x in p[key])
        if hits:
            parts.append(f"{word} {hits}/{n}")
    retrained = sum(p["retrained"])
    if retrained:
        parts.append(f"retrained {retrained}/{n}")
    return ", ".join(parts)


def table(summary: dict[str, Any]) -> str:
    """The terminal table: per window (mean over seeds), then per policy with every seed."""
    names, metric = summary["policies"], summary["metric"]
    lines = [
        f"{metric} of the serving model on each window (mean of {len(summary['seeds'])} seed(s)); "
        "* = retrained after this window (in any seed)"
    ]
    head = f"{'window':<14} {'rows':>6}" + "".join(f" {n:>10}" for n in names) + "  triggered policy saw"
    lines += [head, "-" * len(head)]
    for entry in summary["windows"]:
        cells = ""
        for n in names:
            p = entry["policies"][n]
            cells += f" {_f(p['value']):>9}{'*' if any(p['retrained']) else ' '}"
        lines.append(f"{entry['window']:<14} {entry['rows']:>6}{cells}  {_signals(entry)}")
    lines.append("")
    seeds = summary["seeds"]
    head = f"{'policy':<10} {'mean':>7}" + "".join(f" {'seed ' + str(s):>9}" for s in seeds)
    head += f" {'retrains':>9} {'train s':>8} {'drift':>6} {'decay':>6}"
    lines += [head, "-" * len(head)]
    for n in names:
        t = summary["totals"][n]
        row = f"{n:<10} {_f(t['mean']):>7}" + "".join(f" {_f(s['mean']):>9}" for s in t["per_seed"])
        row += f" {t['retrainings']:>9.1f} {t['training_seconds']:>8.1f} {t['feature_drift_windows']:>6.1f} {t['decay_windows']:>6.1f}"
        lines.append(row)
    verdict = summary.get("triggered_vs_every")
    if verdict:
        lines.append("")
        lines.append(
            ("triggered vs every window: " + ("meets" if verdict["passed"] else "misses") + " the bar: ")
            + "; ".join(verdict["reasons"])
        )
    for text in (gap_text(summary), ceiling_text(summary)):
        if text:
            lines += ["", text]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ HTML


def _plot(summary: dict[str, Any], width: int = 900, height: int = 320) -> str:
    names, windows = summary["policies"], summary["windows"]
    values = [e["policies"][n]["value"] for e in windows for n in names]
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return "<p>No finite values to plot.</p>"
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.01, high + 0.01
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    left, right, top, bottom = 60, 20, 20, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(windows)

    def x(i: int) -> float:
        return left + (plot_w * (i / (n - 1) if n > 1 else 0.5))

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    out = [
        f'<svg id="metric-plot" role="img" aria-label="{html.escape(summary["metric"])} per window" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>'
    )
    for k in range(5):
        v = low + (high - low) * k / 4
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e5e5"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">{v:.3f}</text>')
    step = max(1, n // 12)
    for i in range(0, n, step):
        label = html.escape(windows[i]["window"])
        out.append(
            f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle">{label}</text>'
        )
    for name in names:
        color = COLORS.get(name, "#444")
        points = " ".join(f"{x(i):.1f},{y(e['policies'][name]['value']):.1f}" for i, e in enumerate(windows))
        out.append(
            f'<polyline class="series" data-policy="{name}" fill="none" stroke="{color}" stroke-width="2" points="{points}"/>'
        )
        for i, e in enumerate(windows):
            p = e["policies"][name]
            if any(p["retrained"]) and name != retraining.EVERY:
                out.append(
                    f'<circle cx="{x(i):.1f}" cy="{y(p["value"]):.1f}" r="4" fill="{color}">'
                    f"<title>{name} retrained after {html.escape(e['window'])} "
                    f"({sum(p['retrained'])}/{len(p['retrained'])} seeds)</title></circle>"
                )
    for k, name in enumerate(names):
        lx = left + 10 + k * 130
        out.append(
            f'<rect x="{lx}" y="{height - 18}" width="12" height="4" fill="{COLORS.get(name, "#444")}"/>'
        )
        out.append(f'<text x="{lx + 18}" y="{height - 12}" font-size="12">{name}</text>')
    out.append("</svg>")
    return "\n".join(out)


def html_page(summary: dict[str, Any]) -> str:
    names, metric, seeds = summary["policies"], html.escape(summary["metric"]), summary["seeds"]
    e = html.escape
    rows = []
    for n in names:
        t = summary["totals"][n]
        cells = "".join(f"<td>{_f(s['mean'])}</td>" for s in t["per_seed"])
        rows.append(
            f"<tr data-policy='{n}'><th>{n}</th><td><b>{_f(t['mean'])}</b></td>{cells}"
            f"<td>{t['retrainings']:.1f}</td><td>{t['promotions']:.1f}</td><td>{t['training_seconds']:.1f}</td>"
            f"<td>{t['feature_drift_windows']:.1f}</td><td>{t['label_drift_windows']:.1f}</td><td>{t['decay_windows']:.1f}</td></tr>"
        )
    seed_heads = "".join(f"<th>seed {s}</th>" for s in seeds)
    window_rows = []
    for w in summary["windows"]:
        cells = "".join(
            f"<td>{_f(w['policies'][n]['value'])}{' &#9679;' if any(w['policies'][n]['retrained']) else ''}</td>"
            for n in names
        )
        window_rows.append(
            f"<tr><td>{e(w['window'])}</td><td>{w['rows']}</td>{cells}<td>{e(_signals(w))}</td></tr>"
        )
    verdict = summary.get("triggered_vs_every")
    verdict_html = ""
    if verdict:
        items = "".join(f"<li>{e(r)}</li>" for r in verdict["reasons"])
        word = "meets" if verdict["passed"] else "misses"
        verdict_html = f"<h2>Triggered vs every window</h2><p id='verdict'>The triggered policy {word} the bar:</p><ul>{items}</ul>"
    gap = gap_text(summary)
    if gap:
        verdict_html += (
            f"<h2>Where the triggered policy gains or loses</h2><p id='gap'>{e(gap[0].upper() + gap[1:])}. "
            "Before its first signal nothing had changed that it could see; on a window that signalled, both "
            "policies served a model chosen before the change showed. The parts add up to its gap on the mean.</p>"
        )
    top = ceiling_text(summary)
    if top:
        verdict_html += f"<h2>Ceiling with hindsight</h2><p id='ceiling'>{e(top[0].upper() + top[1:])}.</p>"
    policy_rows = "".join(
        f"<tr><th>{e(k)}</th><td><code>{e(str(v))}</code></td></tr>" for k, v in summary["policy"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Retraining policy backtest</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
code {{ font-size: 90%; }}
</style></head><body>
<h1>Retraining policy backtest</h1>
<p>History <code>{e(summary["source"])}</code>, {len(summary["windows"])} windows served, training entrypoint
<code>{e(summary["entrypoint"])}</code>, {len(seeds)} seed(s) ({", ".join(map(str, seeds))}); {summary["seconds"]:.0f} s.</p>
<h2>{metric} of the serving model on the next window</h2>
{_plot(summary)}
<p>Mean over the seeds; a dot marks a window after which the policy retrained (in any seed).</p>
<h2>Totals</h2>
<table id="totals"><tr><th>policy</th><th>mean {metric}</th>{seed_heads}<th>retrainings</th><th>promotions</th>
<th>training s</th><th>feature drift</th><th>target drift</th><th>decay</th></tr>
{"".join(rows)}</table>
<p>Retrainings, promotions, training seconds and signal counts (windows on which feature drift,
target drift or performance decay was found for the model serving that policy) are means over the seeds.</p>
{verdict_html}
<h2>Per window</h2>
<table id="windows"><tr><th>window</th><th>rows</th>{"".join(f"<th>{n}</th>" for n in names)}<th>triggered policy saw</th></tr>
{"".join(window_rows)}</table>
<h2>Policy</h2><table>{policy_rows}</table>
</body></html>
"""
