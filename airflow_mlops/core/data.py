"""Reading tabular data from a path or object-storage URI, with errors that name the input.

Pure logic with no Airflow import. Local paths and ``file://`` are read directly; other schemes
(``s3://``, ``gs://``, ``abfs://`` ...) go through fsspec, or through Airflow's
``ObjectStoragePath`` when the caller passes one (that is how an Airflow connection supplies
credentials).
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")


class DataReadError(ValueError):
    """The data at a URI cannot be read as a table. The message names the URI."""


def _strip_file_scheme(uri: str) -> str:
    if uri.startswith("file://"):
        return uri[len("file://") :]
    return uri


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _fs_and_path(uri: str, storage_options: dict | None = None) -> tuple[Any, str]:
    if is_local(uri):
        import fsspec

        return fsspec.filesystem("file"), os.path.abspath(_strip_file_scheme(uri))
    import fsspec

    return fsspec.core.url_to_fs(uri, **(storage_options or {}))


def _format_of(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def list_parts(uri: str, storage_options: dict | None = None) -> list[str]:
    """The files that make up the table at ``uri``: the file itself, or a folder's data parts."""
    fs, path = _fs_and_path(uri, storage_options)
    if not fs.exists(path):
        raise DataReadError(f"data not found: {uri}")
    if fs.isdir(path):
        parts = sorted(
            p
            for p in fs.find(path)
            if _format_of(p) is not None and not os.path.basename(p).startswith(("_", "."))
        )
        if not parts:
            raise DataReadError(f"folder {uri} holds no parquet or CSV files")
        return parts
    return [path]


def read_table(
    uri: str,
    *,
    columns: list[str] | None = None,
    storage_options: dict | None = None,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read a parquet or CSV file, or a folder of parquet/CSV parts, into a DataFrame.

    :param uri: local path, ``file://`` URI, or any fsspec URL (``s3://``, ``gs://``, ``abfs://``).
    :param columns: read only these columns (parquet reads them without touching the rest).
    :param storage_options: fsspec options for remote URIs (credentials, endpoint).
    :param allow_empty: return an empty frame instead of raising for zero rows.
    :raises DataReadError: missing input, unknown format, corrupt file, or zero rows.
    """
    import pandas as pd

    fs, path = _fs_and_path(uri, storage_options)
    parts = list_parts(uri, storage_options)
    frames = []
    for part in parts:
        fmt = _format_of(part)
        if fmt is None:
            fmt = _sniff_format(fs, part)
        try:
            with fs.open(part, "rb") as fh:
                if fmt == "parquet":
                    frames.append(pd.read_parquet(fh, columns=columns))
                else:
                    sep = "\t" if part.lower().endswith(".tsv") else ","
                    compression = "gzip" if part.lower().endswith(".gz") else None
                    frames.append(pd.read_csv(fh, usecols=columns, sep=sep, compression=compression))
        except (ValueError, OSError, KeyError) as err:
            where = part if part == path else f"{part} (in {uri})"
            raise DataReadError(f"cannot read {fmt} data {where}: {err}") from err
        except Exception as err:  # pyarrow raises its own ArrowInvalid for corrupt files
            where = part if part == path else f"{part} (in {uri})"
            raise DataReadError(f"cannot read {fmt} data {where}: {type(err).__name__}: {err}") from err
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(df) == 0 and not allow_empty:
        raise DataReadError(f"data is empty (0 rows): {uri}")
    return df


def _sniff_format(fs: Any, path: str) -> str:
    with fs.open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return "parquet"
    return "csv"


def content_hash(uri: str, storage_options: dict | None = None, chunk_size: int = 1 << 20) -> str:
    """``sha256:<hex>`` over the bytes of every part of the table (names included, sorted)."""
    fs, root = _fs_and_path(uri, storage_options)
    digest = hashlib.sha256()
    for part in list_parts(uri, storage_options):
        digest.update(os.path.relpath(part, root).encode() if part != root else b"")
        with fs.open(part, "rb") as fh:
            while chunk := fh.read(chunk_size):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()
