import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from instrl_trl.runs.folder import (
    FINGERPRINT_FILE,
    LOCK_FILE,
    RunFingerprintError,
    RunFolderBusyError,
    RunFolderLock,
    check_fingerprint,
    claim_run_folder,
    fingerprint_folder,
    fingerprint_texts,
)


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from instrl_trl.runs.folder import RunFolderLock
    lock = RunFolderLock(sys.argv[1], "generate")
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
    """
)


def _hold_lock_in_subprocess(folder):
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_lock_names_the_holder_and_is_freed_by_kill_9(tmp_path):
    holder = _hold_lock_in_subprocess(tmp_path)
    try:
        with pytest.raises(RunFolderBusyError, match=rf"process {holder.pid} on host '{socket.gethostname()}'"):
            RunFolderLock(str(tmp_path), "generate").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder died without releasing: its lock is stale and the next run takes it
    assert os.path.exists(tmp_path / LOCK_FILE)
    with RunFolderLock(str(tmp_path), "generate"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not os.path.exists(tmp_path / LOCK_FILE)


def test_lock_is_exclusive_within_a_process_and_released_on_error(tmp_path):
    with RunFolderLock(str(tmp_path), "sft"), pytest.raises(RunFolderBusyError, match="stage `sft`"):
        RunFolderLock(str(tmp_path), "sft").acquire()
    with pytest.raises(KeyError), claim_run_folder(str(tmp_path), "sft", {}):
        raise KeyError("the stage failed")
    with RunFolderLock(str(tmp_path), "sft"):  # the failed run released it
        pass


def test_same_fingerprint_resumes_and_another_is_refused_naming_the_fields(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rank-00000-shard-00000.parquet").write_text("rows")
    first = {"policy": "a", "seeds": "1234", "seed": 42}
    check_fingerprint(str(tmp_path), first)
    check_fingerprint(str(tmp_path), dict(first))  # a rerun resumes

    with pytest.raises(RunFingerprintError) as info:
        check_fingerprint(str(tmp_path), {**first, "policy": "b", "seeds": "5678"}, outputs=["data"])
    message = str(info.value)
    assert '`policy`: "a" before, "b" now' in message and "`seeds`" in message and "`seed`:" not in message
    assert "new `output_dir`" in message and "--overwrite_output_dir" in message
    assert (tmp_path / "data" / "rank-00000-shard-00000.parquet").exists()  # nothing removed when refused

    check_fingerprint(str(tmp_path), {**first, "policy": "b"}, overwrite=True, outputs=["data", "progress"])
    assert not (tmp_path / "data").exists()
    assert json.loads((tmp_path / FINGERPRINT_FILE).read_text())["policy"] == "b"


def test_claim_checks_the_stage(tmp_path):
    with claim_run_folder(str(tmp_path), "generate", {"seed": 1}):
        pass
    refused = claim_run_folder(str(tmp_path), "sft", {"seed": 1})
    with pytest.raises(RunFingerprintError, match='`stage`: "generate" before, "sft" now'), refused:
        pass
    with RunFolderLock(str(tmp_path), "sft"):  # a refused claim holds no lock
        pass


def test_fingerprints_change_with_content(tmp_path):
    assert fingerprint_texts(["a", "b"]) != fingerprint_texts(["a", "c"])
    assert fingerprint_texts(["ab"]) != fingerprint_texts(["a", "b"])
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"1")
    before = fingerprint_folder(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"2")
    assert fingerprint_folder(str(tmp_path)) != before
    assert fingerprint_folder("some-org/some-model") is None


def test_arguments_are_documented():
    from instrl_trl.runs.folder import RunFolderArguments
    from tests.config_docs import assert_config_documented

    assert_config_documented(RunFolderArguments)
