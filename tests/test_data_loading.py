import pytest
from datasets import Dataset

from instrl_trl.data.loading import load_dataset_by_name


ROWS = {"instruction": ["Name a river.", "Describe a city."]}


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_file_by_its_extension(tmp_path, suffix):
    path = str(tmp_path / f"rows{suffix}")
    dataset = Dataset.from_dict(ROWS)
    {".jsonl": dataset.to_json, ".csv": dataset.to_csv, ".parquet": dataset.to_parquet}[suffix](path)
    assert load_dataset_by_name(path)["instruction"] == ROWS["instruction"]


def test_folders_saved_sharded_or_under_data(tmp_path):
    Dataset.from_dict(ROWS).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "generated" / "data").mkdir(parents=True)
    Dataset.from_dict(ROWS).to_parquet(str(tmp_path / "generated" / "data" / "rank-00000-shard-00000.parquet"))
    for folder in ("saved", "generated", "generated/data"):
        assert load_dataset_by_name(str(tmp_path / folder))["instruction"] == ROWS["instruction"], folder


def test_clear_errors_before_any_download(tmp_path):
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(ValueError, match="unsupported file type '.md'"):
        load_dataset_by_name(str(tmp_path / "notes.md"))
    with pytest.raises(FileNotFoundError, match="looks like a file but does not exist"):
        load_dataset_by_name(str(tmp_path / "missing.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no `\*\.parquet` file"):
        load_dataset_by_name(str(tmp_path / "empty"))
