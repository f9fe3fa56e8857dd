"""Which report file the plugin may serve, and reading it: the file-access side of the trust boundary.

The page never takes a path from the request. It serves the URI that the task instance itself
stored (XCom ``mlops_report_uri``), and only when that URI names a report file (``.html``,
``.json``) inside one of the report roots the API server's configuration allows: the default
``$AIRFLOW_HOME/reports`` and ``[mlops] report_roots``. Paths are resolved (``..`` and symbolic
links included) before they are compared, URLs are never fetched over HTTP (no server-side
requests to arbitrary hosts), and in the default root a file must sit in the folder of the DAG the
user was authorised for (``<root>/<kind>/<dag_id>/...``), so a task cannot point its link at
another DAG's report.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from urllib.parse import urlsplit

from airflow_mlops.io import _safe_segment
from airflow_mlops.plugins.routes import REPORT_SUFFIXES, default_report_root

MAX_REPORT_BYTES = 64 * 1024 * 1024
"""Larger files are refused rather than read into the API server's memory."""
_WEB_SCHEMES = ("http", "https")


class ReportRefused(Exception):
    """The stored URI is not a report this page may serve; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class ReportFile:
    uri: str
    """The URI as the task stored it."""
    location: str
    """The resolved local path, or the normalised object-storage URL."""
    media_type: str
    local: bool


def report_roots(configured: str | None) -> list[str]:
    """The default root, then the comma-separated ``[mlops] report_roots``."""
    extra = [part.strip() for part in (configured or "").split(",") if part.strip()]
    return [default_report_root(), *extra]


def _is_url(text: str) -> bool:
    scheme = urlsplit(text).scheme
    return len(scheme) > 1 and not text.startswith("file://")  # "C:\..." is a path, not a URL


def _local_path(text: str) -> str:
    return text[len("file://") :] if text.startswith("file://") else text


def resolve_report(uri: str, roots: list[str], dag_id: str) -> ReportFile:
    """The report file ``uri`` names, if the page may serve it for ``dag_id``.

    :raises ReportRefused: 404 naming the reason (outside the roots, not a report file, missing).
    """
    uri = str(uri or "").strip()
    if not uri or "\x00" in uri:
        raise ReportRefused(404, "this task instance stored no report")
    suffix = posixpath.splitext(urlsplit(uri).path if _is_url(uri) else uri)[1].lower()
    media_type = REPORT_SUFFIXES.get(suffix)
    if media_type is None:
        raise ReportRefused(404, f"{uri} is not a report file ({', '.join(sorted(REPORT_SUFFIXES))})")
    if _is_url(uri):
        return _resolve_url(uri, roots, media_type)
    return _resolve_local(uri, roots, dag_id, media_type)


def _outside(uri: str, roots: list[str]) -> ReportRefused:
    return ReportRefused(
        404,
        f"{uri} is outside the report roots this server serves ({', '.join(roots)}); if a task writes "
        "its reports there on purpose, add the folder to [mlops] report_roots of the API server",
    )


def _resolve_local(uri: str, roots: list[str], dag_id: str, media_type: str) -> ReportFile:
    path = _local_path(uri)
    if not os.path.isabs(path):
        raise ReportRefused(404, f"{uri} is not an absolute path")
    real = os.path.realpath(path)  # resolves "..", and symbolic links out of a root
    default = os.path.realpath(roots[0])
    for root in roots:
        if _is_url(root):
            continue
        real_root = os.path.realpath(_local_path(root))
        if real == real_root or os.path.commonpath([real, real_root]) != real_root:
            continue
        if real_root == default:
            # <root>/<kind>/<dag_id>/<run_id>/<task_id>/<file>: only the authorised DAG's folder
            parts = os.path.relpath(real, real_root).split(os.sep)
            if len(parts) < 3 or parts[1] != _safe_segment(dag_id):
                raise ReportRefused(404, f"{uri} is not a report of DAG {dag_id}")
        if not os.path.isfile(real):
            raise ReportRefused(
                404,
                f"report {uri} is not on this server's disk: it was written on the worker; give the "
                "task a report_dir on shared or object storage and list it in [mlops] report_roots",
            )
        return ReportFile(uri=uri, location=real, media_type=media_type, local=True)
    raise _outside(uri, roots)


def _resolve_url(uri: str, roots: list[str], media_type: str) -> ReportFile:
    parts = urlsplit(uri)
    if parts.scheme in _WEB_SCHEMES:
        raise ReportRefused(404, f"{uri} is a web address: open it directly, this server does not fetch it")
    segments = parts.path.split("/")
    if any(seg in ("..", ".") for seg in segments) or parts.query or parts.fragment:
        raise ReportRefused(404, f"{uri} is not a plain object path")
    for root in roots:
        if not _is_url(root):
            continue
        base = urlsplit(root.rstrip("/"))
        if (base.scheme, base.netloc) == (parts.scheme, parts.netloc) and parts.path.startswith(
            base.path + "/"
        ):
            return ReportFile(uri=uri, location=uri, media_type=media_type, local=False)
    raise _outside(uri, roots)


def read_report(report: ReportFile, conn_id: str | None = None) -> bytes:
    """The file's bytes (object storage through ``conn_id``, or the filesystem's own credentials)."""
    if report.local:
        if os.path.getsize(report.location) > MAX_REPORT_BYTES:
            raise ReportRefused(413, f"{report.uri} is larger than {MAX_REPORT_BYTES} bytes")
        with open(report.location, "rb") as fh:
            return fh.read()
    if conn_id:
        from airflow.sdk import ObjectStoragePath

        opened = ObjectStoragePath(report.location, conn_id=conn_id).open("rb")
    else:
        import fsspec

        opened = fsspec.open(report.location, "rb").open()
    with opened as fh:
        data = fh.read(MAX_REPORT_BYTES + 1)
    if len(data) > MAX_REPORT_BYTES:
        raise ReportRefused(413, f"{report.uri} is larger than {MAX_REPORT_BYTES} bytes")
    return data
