"""
The local test Hub (`tests/hub_server.py`) against the real clients.

The clients read `HF_ENDPOINT` at import, so each scenario runs them in a subprocess pointed at a server of its own:
these tests hold whatever the conftest set, and a client upgrade that changes the protocol fails here first.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest

from tests.hub_server import HubServer, StoredFile, apply_operations, git_blob_sha1, reserve_port, tree_entries


SHA256_01 = hashlib.sha256(b"\x00\x01").hexdigest()


@pytest.fixture
def server():
    with HubServer() as hub:
        yield hub


def run_client(script: str, server: HubServer, tmp_path) -> str:
    """Runs `script` in a fresh interpreter whose HF clients talk to `server`; returns its stdout."""
    env = {
        **os.environ,
        "HF_ENDPOINT": server.url,
        "HF_TOKEN": "hf_dummy_token_for_the_local_test_hub",
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    }
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_DATASETS_OFFLINE", None)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"client failed:\n{result.stderr[-4000:]}"
    return result.stdout


def test_upload_list_download_snapshot_delete(server, tmp_path):
    run_client(
        """
        import pathlib, tempfile
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

        api = HfApi()
        assert api.whoami()["name"] == "user"
        api.create_repo("user/model")
        api.create_repo("user/model", exist_ok=True)
        folder = pathlib.Path(tempfile.mkdtemp())
        binary = bytes(range(256)) * 4
        (folder / "notes.txt").write_text("hello\\n")
        (folder / "weights").mkdir()
        (folder / "weights" / "w.bin").write_bytes(binary)
        first = api.upload_folder(folder_path=folder, repo_id="user/model")
        assert sorted(api.list_repo_files("user/model")) == [".gitattributes", "notes.txt", "weights/w.bin"]

        assert open(hf_hub_download("user/model", "weights/w.bin"), "rb").read() == binary
        assert open(hf_hub_download("user/model", "notes.txt"), "rb").read() == b"hello\\n"
        snapshot = pathlib.Path(snapshot_download("user/model"))
        assert (snapshot / "weights" / "w.bin").read_bytes() == binary
        assert (snapshot / "notes.txt").read_text() == "hello\\n"

        tree = {f.path: f for f in api.list_repo_tree("user/model", recursive=True)}
        assert tree["weights/w.bin"].lfs.size == len(binary) and tree["notes.txt"].lfs is None
        assert tree["notes.txt"].blob_id == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
        infos = api.get_paths_info("user/model", ["weights", "notes.txt", "missing.txt"])
        assert [(type(info).__name__, info.path) for info in infos] == [
            ("RepoFolder", "weights"),
            ("RepoFile", "notes.txt"),
        ]
        assert api.file_exists("user/model", "weights/w.bin") and not api.file_exists("user/model", "weights/x.bin")

        api.upload_file(path_or_fileobj=b"bye\\n", path_in_repo="notes.txt", repo_id="user/model")
        api.delete_file("weights/w.bin", repo_id="user/model")
        assert api.repo_info("user/model").sha != first.oid
        assert sorted(api.list_repo_files("user/model")) == [".gitattributes", "notes.txt"]
        old = hf_hub_download("user/model", "notes.txt", revision=first.oid, cache_dir=tempfile.mkdtemp())
        assert open(old, "rb").read() == b"hello\\n"

        for error, call in [
            (EntryNotFoundError, lambda: hf_hub_download("user/model", "missing.txt")),
            (RevisionNotFoundError, lambda: api.repo_info("user/model", revision="0" * 40)),
            (RepositoryNotFoundError, lambda: api.repo_info("user/nothing")),
        ]:
            try:
                call()
            except error:
                pass
            else:
                raise AssertionError(f"expected {error.__name__}")
        api.delete_repo("user/model")
        assert not api.repo_exists("user/model")
        """,
        server,
        tmp_path,
    )
    assert ("PUT", "/lfs-upload/" + hashlib.sha256(bytes(range(256)) * 4).hexdigest()) in (server.requests_log)


def test_dataset_push_and_load_with_card(server, tmp_path):
    run_client(
        """
        from datasets import Dataset, load_dataset
        from huggingface_hub import DatasetCard, DatasetCardData, HfApi

        rows = {"instruction": ["Write a poem.", "Sum 2 and 3.", "Name a colour."], "score": [0.5, 1.0, 0.25]}
        Dataset.from_dict(rows).push_to_hub("user/seeds")
        assert load_dataset("user/seeds", split="train").to_dict() == rows

        template = "---\\n{{ card_data }}\\n---\\n# Seeds\\n"
        card = DatasetCard.from_template(DatasetCardData(license="mit", pretty_name="Seeds"), template_str=template)
        card.push_to_hub("user/seeds")
        loaded = DatasetCard.load("user/seeds", repo_type="dataset")
        assert loaded.data.license == "mit" and loaded.data.pretty_name == "Seeds"
        assert loaded.text.strip() == "# Seeds"
        assert HfApi().dataset_info("user/seeds").card_data.license == "mit"
        """,
        server,
        tmp_path,
    )
    paths = [path for _, path in server.requests_log]
    assert "/datasets/user/seeds.git/info/lfs/objects/batch" in paths  # the parquet shard went through LFS


def test_model_and_tokenizer_push_and_from_pretrained(server, tmp_path):
    run_client(
        """
        import torch
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig
        from transformers import BertForSequenceClassification, PreTrainedTokenizerFast

        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "make", "it", "harder"]
        backend = Tokenizer(models.WordLevel(vocab={word: i for i, word in enumerate(words)}, unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
            mask_token="[MASK]",
        )
        config = BertConfig(
            vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=32, num_labels=3,
        )
        torch.manual_seed(0)
        model = BertForSequenceClassification(config)
        model.push_to_hub("user/tiny-bert")
        tokenizer.push_to_hub("user/tiny-bert")

        loaded = AutoModelForSequenceClassification.from_pretrained("user/tiny-bert")
        expected, actual = model.state_dict(), loaded.state_dict()
        assert expected.keys() == actual.keys()
        assert all(torch.equal(expected[name], actual[name]) for name in expected)
        loaded_tokenizer = AutoTokenizer.from_pretrained("user/tiny-bert")
        assert loaded_tokenizer("make it harder")["input_ids"] == tokenizer("make it harder")["input_ids"] == [5, 6, 7]
        """,
        server,
        tmp_path,
    )
    files = server.repos[("model", "user/tiny-bert")].head.files
    assert files["model.safetensors"].lfs and not files["config.json"].lfs
    assert {"tokenizer.json", "tokenizer_config.json"} <= files.keys()


def test_injected_failures(server, tmp_path):
    # The preupload call goes through the client's backoff (5xx retried after 1 s, then 2 s); the commit does not
    server.fail_next(2, status=500, path_contains="/preupload/")
    server.fail_next(1, status=500, path_contains="/commit/")
    run_client(
        """
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError

        api = HfApi()
        api.create_repo("user/flaky")
        try:
            api.upload_file(path_or_fileobj=b"first", path_in_repo="a.txt", repo_id="user/flaky")
        except HfHubHTTPError as error:
            assert error.response.status_code == 500, error
        else:
            raise AssertionError("the failed commit did not raise")
        api.upload_file(path_or_fileobj=b"second", path_in_repo="a.txt", repo_id="user/flaky")
        """,
        server,
        tmp_path,
    )
    log = server.requests_log
    assert log.count(("POST", "/api/models/user/flaky/preupload/main")) == 4  # 2 failed + 1 retried + 1
    assert log.count(("POST", "/api/models/user/flaky/commit/main")) == 2
    repo = server.repos[("model", "user/flaky")]
    assert len(repo.commits) == 2 and repo.head.files["a.txt"].content == b"second"


def test_commit_and_tree_bookkeeping():
    hub = HubServer()  # not started: the bookkeeping alone
    repo = hub.create_repo("dataset", "user/books")
    initial = repo.head
    hub.lfs_store[SHA256_01] = b"\x00\x01"  # as the LFS batch + PUT leave it
    files = dict(repo.head.files)
    summary = apply_operations(
        files,
        [
            {"key": "header", "value": {"summary": "add", "description": ""}},
            {"key": "file", "value": {"path": "a/b/c.txt", "content": base64.b64encode(b"hello\n").decode()}},
            {"key": "file", "value": {"path": "a/d.txt", "content": base64.b64encode(b"d").decode()}},
            {"key": "lfsFile", "value": {"path": "x.parquet", "algo": "sha256", "oid": SHA256_01}},
        ],
        hub.lfs_store,
    )
    second = repo.commit(summary, files)
    assert second.sha != initial.sha and len(second.sha) == 40 and second.message == "add"
    assert files["a/b/c.txt"].blob_id == git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert files["x.parquet"].lfs and files["x.parquet"].etag == SHA256_01

    top = tree_entries(second.files)
    assert [(entry["path"], entry["type"]) for entry in top] == [
        (".gitattributes", "file"),
        ("a", "directory"),
        ("x.parquet", "file"),
    ]
    assert top[2]["lfs"]["size"] == 2 and "lfs" not in top[0]
    recursive = [entry["path"] for entry in tree_entries(second.files, "a", recursive=True)]
    assert recursive == ["a/b", "a/b/c.txt", "a/d.txt"]

    files = dict(second.files)
    apply_operations(files, [{"key": "deletedFolder", "value": {"path": "a/"}}], hub.lfs_store)
    third = repo.commit("remove a", files)
    assert sorted(third.files) == [".gitattributes", "x.parquet"]
    assert repo.resolve("main") is third and repo.resolve(second.sha) is second and repo.resolve("dev") is None
    # The sha hashes the parent too: the same tree and message on top of `third` is a new commit
    assert repo.commit("remove a", files).sha != third.sha
    with pytest.raises(KeyError, match="never uploaded"):
        apply_operations({}, [{"key": "lfsFile", "value": {"path": "y.bin", "oid": "0" * 64}}], hub.lfs_store)


def test_resolve_headers_range_and_errors():
    port = reserve_port()
    with HubServer().start(port) as server:
        assert server.url == f"http://127.0.0.1:{port}"
        repo = server.create_repo("model", "user/raw")
        repo.commit("add", {**repo.head.files, "data.bin": StoredFile(b"0123456789", lfs=True)})
        url = f"{server.url}/user/raw/resolve/main/data.bin"

        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as response:
            assert response.headers["X-Repo-Commit"] == repo.head.sha
            assert response.headers["X-Linked-Size"] == "10" and response.headers["Content-Length"] == "10"
            assert response.headers["ETag"] == f'"{hashlib.sha256(b"0123456789").hexdigest()}"'
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=2-4"})) as response:
            assert response.status == 206 and response.read() == b"234"
            assert response.headers["Content-Range"] == "bytes 2-4/10"

        for path, code in [
            ("/user/raw/resolve/main/missing", "EntryNotFound"),
            ("/user/raw/resolve/dev/data.bin", "RevisionNotFound"),
            ("/api/models/user/none", "RepoNotFound"),
        ]:
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(server.url + path)
            assert caught.value.code == 404 and caught.value.headers["X-Error-Code"] == code

        server.fail_next(1, status=503)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(server.url + "/api/models/user/raw")
        assert caught.value.code == 503
        with urllib.request.urlopen(server.url + "/api/models/user/raw") as response:
            info = json.load(response)
        assert info["sha"] == repo.head.sha and [s["rfilename"] for s in info["siblings"]] == [
            ".gitattributes",
            "data.bin",
        ]
        assert ("GET", "/api/models/user/raw") in server.requests_log
