"""``python -m airflow_mlops.core.quality suggest|check``: draft a suite from trusted data, or
check a table against a suite, without Airflow."""

from __future__ import annotations

import os
from collections.abc import Sequence

from airflow_mlops.core.quality.gx import MissingColumnError
from airflow_mlops.core.quality.report import render_html
from airflow_mlops.core.quality.suggest import generate_suite
from airflow_mlops.core.quality.suite import SuiteError
from airflow_mlops.core.quality.validate import validate_table
from airflow_mlops.core.quality.verdict import FAIL_ON, failure_message

DESCRIPTION = "Data-quality gate logic on Great Expectations 1.x, with no Airflow import."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code: 0 passed (or suite written), 1 the gate failed,
    2 bad input (the message names it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m airflow_mlops.core.quality", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("suggest", help="write a starter suite that describes a reference dataset")
    p.add_argument("data", help="parquet/CSV file or folder of parts (local path or fsspec URL)")
    p.add_argument("-o", "--output", required=True, help="suite file to write (.json, .yaml or .yml)")
    p.add_argument("--name", help="suite name (default: the output file's stem)")
    p.add_argument("--max-categories", type=int, default=20)
    p.add_argument("--range-margin", type=float, default=0.1)
    p.add_argument("--mostly", type=float, default=0.99)
    c = sub.add_parser("check", help="validate data against a suite and print the verdict")
    c.add_argument("data")
    c.add_argument("suite")
    c.add_argument("--fail-on", choices=FAIL_ON, default="critical")
    c.add_argument("--html", help="also write the HTML report here")
    args = parser.parse_args(argv)
    from airflow_mlops.core.data import DataReadError

    try:
        if args.command == "suggest":
            options = {
                "max_categories": args.max_categories,
                "range_margin": args.range_margin,
                "mostly": args.mostly,
            }
            if args.name:
                options["name"] = args.name
            suite = generate_suite(args.data, args.output, **options)
            print(f"wrote {len(suite['expectations'])} expectations to {args.output}")
            return 0
        summary, result = validate_table(args.data, args.suite, fail_on=args.fail_on)
        if args.html:
            with open(args.html, "w", encoding="utf-8") as fh:
                fh.write(render_html(summary, result))
            summary["report_uri"] = os.path.abspath(args.html)
        print(failure_message(summary))
        return 0 if summary["success"] else 1
    except (SuiteError, MissingColumnError, DataReadError, ValueError) as err:
        print(f"error: {err}")
        return 2
