"""core/data.py: which files make a table, reading them, and the content hash of the lineage."""

from __future__ import annotations

import gzip
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from airflow_mlops.core.data import DataReadError, content_hash, is_local, list_parts, read_table

FRAME = pd.DataFrame({"amount": [1.5, 2.5, 3.5], "plan": ["basic", "pro", "basic"]})


def test_local_means_a_path_or_file_uri():
    assert is_local("/data/x.parquet") and is_local("x.csv") and is_local("file:///data/x.parquet")
    assert not is_local("s3://bucket/x.parquet") and not is_local("memory://x")


def test_list_parts_of_a_file_is_the_file_as_an_absolute_path(tmp_path: Path, monkeypatch):
    FRAME.to_csv(tmp_path / "x.csv", index=False)
    monkeypatch.chdir(tmp_path)
    assert list_parts("x.csv") == [str(tmp_path / "x.csv")]
    assert list_parts(f"file://{tmp_path}/x.csv") == [str(tmp_path / "x.csv")]


def test_list_parts_of_a_folder_are_its_data_files_sorted_and_nested(tmp_path: Path):
    (tmp_path / "day=2").mkdir()
    for name in ("b.parquet", "a.csv", "day=2/c.pq", "_SUCCESS", "_tmp.parquet", ".hidden.csv", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [Path(p).relative_to(tmp_path).as_posix() for p in list_parts(str(tmp_path))] == [
        "a.csv",
        "b.parquet",
        "day=2/c.pq",
    ]


def test_list_parts_errors_name_the_uri(tmp_path: Path):
    with pytest.raises(DataReadError, match=f"^data not found: {tmp_path}/missing.parquet$"):
        list_parts(f"{tmp_path}/missing.parquet")
    (tmp_path / "_SUCCESS").write_bytes(b"")
    with pytest.raises(DataReadError, match=f"^folder {tmp_path} holds no parquet or CSV files$"):
        list_parts(str(tmp_path))


@pytest.mark.parametrize("name", ["x.csv", "x.tsv", "x.csv.gz", "x.parquet", "x.pq", "x.PARQUET"])
def test_read_table_reads_each_format_by_its_suffix(tmp_path: Path, name: str):
    path = tmp_path / name
    if "parq" in name.lower() or name.endswith(".pq"):
        FRAME.to_parquet(path)
    elif name.endswith(".tsv"):
        FRAME.to_csv(path, sep="\t", index=False)
    elif name.endswith(".gz"):
        path.write_bytes(gzip.compress(FRAME.to_csv(index=False).encode()))
    else:
        FRAME.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_table(str(path)), FRAME)


def test_read_table_sniffs_a_file_without_a_known_suffix(tmp_path: Path):
    FRAME.to_parquet(tmp_path / "export.bin")
    (tmp_path / "export.dat").write_text(FRAME.to_csv(index=False))
    pd.testing.assert_frame_equal(read_table(str(tmp_path / "export.bin")), FRAME)  # PAR1 magic
    pd.testing.assert_frame_equal(read_table(str(tmp_path / "export.dat")), FRAME)  # else CSV


def test_read_table_concatenates_a_folder_of_mixed_parts_in_order(tmp_path: Path):
    FRAME.iloc[:2].to_parquet(tmp_path / "part-0.parquet")
    FRAME.iloc[2:].to_csv(tmp_path / "part-1.csv", index=False)
    (tmp_path / "_SUCCESS").write_bytes(b"")
    pd.testing.assert_frame_equal(read_table(str(tmp_path)), FRAME)


def test_read_table_reads_only_the_named_columns(tmp_path: Path):
    FRAME.to_parquet(tmp_path / "x.parquet")
    FRAME.to_csv(tmp_path / "x.csv", index=False)
    assert list(read_table(str(tmp_path / "x.parquet"), columns=["plan"]).columns) == ["plan"]
    assert list(read_table(str(tmp_path / "x.csv"), columns=["plan"]).columns) == ["plan"]


def test_read_table_through_fsspec(memory_folder: str):
    with fsspec.open(f"{memory_folder}/a.parquet", "wb") as fh:
        FRAME.iloc[:1].to_parquet(fh)
    with fsspec.open(f"{memory_folder}/b.csv", "w") as fh:
        fh.write(FRAME.iloc[1:].to_csv(index=False))
    pd.testing.assert_frame_equal(read_table(memory_folder), FRAME)


def test_read_table_errors_name_the_file_and_the_folder(tmp_path: Path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataReadError, match=f"^cannot read parquet data {tmp_path}/bad.parquet: "):
        read_table(str(tmp_path / "bad.parquet"))

    folder = tmp_path / "windows"
    folder.mkdir()
    FRAME.to_parquet(folder / "a.parquet")
    (folder / "b.parquet").write_bytes(b"garbage")
    with pytest.raises(
        DataReadError, match=f"^cannot read parquet data {folder}/b.parquet \\(in {folder}\\): "
    ):
        read_table(str(folder))

    with pytest.raises(DataReadError, match="^data not found: "):
        read_table(str(tmp_path / "missing.csv"))


def test_read_table_refuses_zero_rows_unless_allowed(tmp_path: Path):
    (tmp_path / "empty.csv").write_text("amount,plan\n")
    with pytest.raises(DataReadError, match=f"^data is empty \\(0 rows\\): {tmp_path}/empty.csv$"):
        read_table(str(tmp_path / "empty.csv"))
    empty = read_table(str(tmp_path / "empty.csv"), allow_empty=True)
    assert len(empty) == 0 and list(empty.columns) == ["amount", "plan"]


def test_content_hash_is_stable_and_depends_on_the_bytes_only_for_a_file(tmp_path: Path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "copy.csv").write_text("x\n1\n")
    digest = content_hash(str(tmp_path / "a.csv"))
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert content_hash(str(tmp_path / "a.csv")) == digest
    assert content_hash(f"file://{tmp_path}/a.csv") == digest
    assert content_hash(str(tmp_path / "copy.csv")) == digest  # the same data under another name

    (tmp_path / "a.csv").write_text("x\n2\n")
    assert content_hash(str(tmp_path / "a.csv")) != digest


def test_content_hash_of_a_folder_covers_part_names_and_bytes(tmp_path: Path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        (folder / "p0.csv").write_text("x\n1\n")
        (folder / "p1.csv").write_text("x\n2\n")
    assert content_hash(str(one)) == content_hash(str(two))

    (two / "p1.csv").rename(two / "p2.csv")  # same bytes, another part
    assert content_hash(str(one)) != content_hash(str(two))
    (two / "p2.csv").rename(two / "p1.csv")
    (two / "p1.csv").write_text("x\n3\n")
    assert content_hash(str(one)) != content_hash(str(two))

    before = content_hash(str(one))
    (one / "_SUCCESS").write_text("not data")  # not a part: does not change the hash
    assert content_hash(str(one)) == before


def test_content_hash_through_fsspec_and_of_missing_data(memory_folder: str, tmp_path: Path):
    with fsspec.open(f"{memory_folder}/a.csv", "w") as fh:
        fh.write("x\n1\n")
    (tmp_path / "a.csv").write_text("x\n1\n")
    assert content_hash(f"{memory_folder}/a.csv") == content_hash(str(tmp_path / "a.csv"))
    with pytest.raises(DataReadError, match=f"^data not found: {memory_folder}/missing.csv$"):
        content_hash(f"{memory_folder}/missing.csv")
