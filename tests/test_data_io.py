import os

import pandas as pd
import pytest

from emoalign.data.io import atomic_path, read_metadata, read_table, write_table
from emoalign.errors import EmoalignError


def _stimuli():
    return pd.DataFrame({"image_id": ["a", "b"], "path": ["a.png", "b.png"], "emotion": ["happy", "sad"],
                         "sha256": ["0" * 64, "1" * 64], "race": ["Korean", "Black"]})


def test_roundtrip_keeps_design_columns_and_metadata(tmp_path):
    p = write_table(_stimuli(), tmp_path / "s.parquet", "stimuli", metadata={"k": 1})
    df = read_table(p, "stimuli")
    assert list(df["race"]) == ["Korean", "Black"]
    assert read_metadata(p) == {"k": 1}


def test_missing_column_and_duplicate_key_are_named(tmp_path):
    with pytest.raises(EmoalignError, match="sha256"):
        write_table(_stimuli().drop(columns="sha256"), tmp_path / "s.parquet", "stimuli")
    dup = pd.concat([_stimuli(), _stimuli().iloc[[0]]])
    with pytest.raises(EmoalignError, match="share a key"):
        write_table(dup, tmp_path / "s.parquet", "stimuli")


def test_existing_file_needs_force(tmp_path):
    p = write_table(_stimuli(), tmp_path / "s.parquet", "stimuli")
    with pytest.raises(EmoalignError, match="--force"):
        write_table(_stimuli(), p, "stimuli")
    write_table(_stimuli().iloc[:1], p, "stimuli", force=True)
    assert len(read_table(p)) == 1


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    p = write_table(_stimuli(), tmp_path / "s.parquet", "stimuli")
    before = p.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(p, force=True) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash mid-write")
    assert p.read_bytes() == before
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []
