import logging
import os

import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard, HfApi

from instrl_trl.generation.builder import ROW_SCHEMA, to_row
from instrl_trl.generation.evolve import Candidate
from instrl_trl.generation.responses import AnsweredCandidate
from instrl_trl.generation.shards import ShardWriter
from instrl_trl.hub.push import push_folder


PATTERNS = ["data/*.parquet", "README.md", "*.png"]
CARD = """---
license: apache-2.0
pretty_name: pushed-instructions
---

# pushed-instructions

Rows: 3
"""


def no_sleep(seconds):
    pass


def make_dataset_folder(folder):
    """A generation output folder: two shards, a card, and files that must not be pushed."""
    writer = ShardWriter(str(folder), shard_size=2, schema=ROW_SCHEMA)
    for index in range(3):
        candidate = Candidate(f"Instruction {index}.", f"Seed {index}.", index, ("deepening",), 1, 1.0, ())
        writer.add([to_row(AnsweredCandidate(candidate, f"Answer {index}.", None, 1))], [index])
    writer.flush()
    (folder / "README.md").write_text(CARD)
    (folder / "response_cache.sqlite").write_bytes(b"not for the Hub")
    return folder


def snapshot(folder):
    return {
        os.path.relpath(os.path.join(root, name), folder): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(folder)
        for name in names
    }


def commits(hub):
    return [path for method, path in hub.requests_log if method == "POST" and "/commit/" in path]


def test_push_folder_round_trip(hub, tmp_path):
    folder = make_dataset_folder(tmp_path / "run")
    url = push_folder(str(folder), "user/pushed-round-trip", allow_patterns=PATTERNS, sleep=no_sleep)
    assert "user/pushed-round-trip" in url
    assert len(commits(hub)) == 1

    files = set(HfApi().list_repo_files("user/pushed-round-trip", repo_type="dataset"))
    assert files == {
        ".gitattributes",
        "README.md",
        "data/rank-00000-shard-00000.parquet",
        "data/rank-00000-shard-00001.parquet",
    }
    rows = load_dataset("user/pushed-round-trip", split="train").to_list()
    assert sorted((row["seed_index"], row["instruction"], row["response"]) for row in rows) == [
        (i, f"Instruction {i}.", f"Answer {i}.") for i in range(3)
    ]
    assert rows[0]["messages"][0] == {"role": "user", "content": rows[0]["instruction"]}
    card = DatasetCard.load("user/pushed-round-trip", repo_type="dataset")
    assert card.data.license == "apache-2.0"
    assert "Rows: 3" in card.content


def test_a_second_push_updates_the_repo(hub, tmp_path):
    folder = make_dataset_folder(tmp_path / "run")
    push_folder(str(folder), "user/pushed-twice", allow_patterns=PATTERNS, sleep=no_sleep)
    (folder / "README.md").write_text(CARD.replace("Rows: 3", "Rows: 3 (updated)"))
    push_folder(str(folder), "user/pushed-twice", allow_patterns=PATTERNS, sleep=no_sleep)  # the repo exists
    assert "Rows: 3 (updated)" in DatasetCard.load("user/pushed-twice", repo_type="dataset").content


def test_a_failed_commit_is_retried_and_logged(hub, tmp_path, caplog):
    folder = make_dataset_folder(tmp_path / "run")
    hub.fail_next(1, status=500, path_contains="/commit/")
    waits = []
    with caplog.at_level(logging.WARNING, logger="instrl_trl.hub.push"):
        push_folder(str(folder), "user/pushed-after-retry", allow_patterns=PATTERNS, sleep=waits.append)

    assert len(commits(hub)) == 2  # the failed commit, then ours again
    assert len(waits) == 1 and 0 <= waits[0] <= 2.0  # backoff_base * 2**0, with jitter
    warnings = [record for record in caplog.records if record.name == "instrl_trl.hub.push"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "user/pushed-after-retry" in message
    assert "attempt 1/4" in message
    token = os.environ["HF_TOKEN"]
    assert token not in caplog.text
    rows = load_dataset("user/pushed-after-retry", split="train")
    assert len(rows) == 3


def test_retries_give_up_after_max_retries(hub, tmp_path, caplog):
    folder = make_dataset_folder(tmp_path / "run")
    before = snapshot(folder)
    hub.fail_next(3, status=503, path_contains="/commit/")
    expected = pytest.raises(RuntimeError, match="local copy .* is complete and untouched")
    with caplog.at_level(logging.WARNING, logger="instrl_trl.hub.push"), expected:
        push_folder(str(folder), "user/pushed-never", allow_patterns=PATTERNS, max_retries=2, sleep=no_sleep)
    assert len(commits(hub)) == 3
    assert len([r for r in caplog.records if r.name == "instrl_trl.hub.push"]) == 2
    assert snapshot(folder) == before


def test_a_refused_commit_is_not_retried(hub, tmp_path, caplog):
    folder = make_dataset_folder(tmp_path / "run")
    before = snapshot(folder)
    hub.fail_next(5, status=403, path_contains="/commit/")
    with caplog.at_level(logging.WARNING, logger="instrl_trl.hub.push"), pytest.raises(RuntimeError) as info:
        push_folder(str(folder), "user/pushed-forbidden", allow_patterns=PATTERNS, sleep=no_sleep)

    message = str(info.value)
    assert "user/pushed-forbidden" in message
    assert f"The local copy in {folder} is complete and untouched" in message
    assert f"hf upload user/pushed-forbidden {folder} --repo-type dataset" in message
    assert "rerunning the same command" in message
    assert os.environ["HF_TOKEN"] not in message
    assert len(commits(hub)) == 1  # a 403 is not worth another try
    assert [r for r in caplog.records if r.name == "instrl_trl.hub.push"] == []
    assert snapshot(folder) == before


@pytest.mark.parametrize("status, retried", [(429, True), (400, False)])
def test_push_retries_by_the_shared_policy(hub, tmp_path, status, retried):
    folder = make_dataset_folder(tmp_path / "run")
    hub.fail_next(1, status=status, path_contains="/commit/")
    repo_id = f"user/pushed-after-{status}"
    if retried:
        push_folder(str(folder), repo_id, allow_patterns=PATTERNS, sleep=no_sleep)
    else:
        with pytest.raises(RuntimeError, match=repo_id):
            push_folder(str(folder), repo_id, allow_patterns=PATTERNS, sleep=no_sleep)
    assert len(commits(hub)) == (2 if retried else 1)
