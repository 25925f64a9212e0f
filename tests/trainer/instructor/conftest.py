import os

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    # On the shared 2-core machine two threads were up to 10x slower than one (oversubscription); restored after
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def instructor_cache(tmp_path_factory) -> str:
    """The cache folder of built default instructors, shared by the tests and the CLI subprocesses of the session."""
    return str(tmp_path_factory.mktemp("instrl-trl-cache"))


@pytest.fixture(scope="session")
def tiny_instructor(instructor_cache) -> str:
    """The offline default instructor (tiny chat model, warm-started on tool-call transcripts); returns its folder."""
    from instrl_trl.operations import build_operation_library
    from instrl_trl.tool_environment import DEFAULT_TASK_PROMPT
    from instrl_trl.trainer.instructor import default_instructor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return default_instructor(build_operation_library(), DEFAULT_TASK_PROMPT, cache_dir=instructor_cache)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def silence_trl(monkeypatch):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    return os.environ
