import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import EvalResult, HfApi, ModelCard
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import is_peft_available

from instrl_trl.cli.sft import make_parser
from instrl_trl.data.training_constraints import read_training_constraints
from instrl_trl.hub import framework_versions
from instrl_trl.models import builtin as models
from instrl_trl.runs.folder import RunFingerprintError
from instrl_trl.sft import LOSS_PLOT_FILE, build_sft_card, plot_loss_curve, policy_from_dataset_card
from instrl_trl.sft.sft_config import SFTScriptArguments
from instrl_trl.stages.sft import DEFAULT_CHAT_TEMPLATE, hub_dataset_id, load_messages_dataset, load_tokenizer, run_sft
from tests.backends.tiny_causal_lm import build_tiny_causal_lm
from tests.config_docs import assert_config_documented
from tests.sft.conftest import CARD_CONSTRAINTS_YAML, POLICY_ID, write_messages_parquet


REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "quickstart" / "sft.yaml"
USER_ASSISTANT = [{"role": "user", "content": "Name a river."}, {"role": "assistant", "content": "The Ebro."}]


def parse(*overrides: str):
    """The quickstart recipe, shrunken to a few steps that log every step; `overrides` as on the command line."""
    args = ["--config", str(RECIPE), "--max_steps", "4", "--logging_steps", "1", "--disable_tqdm", "true"]
    return make_parser(prog="instrl-trl sft").parse_args_and_config([*args, *overrides])


def assert_weights(model_a: str, model_b: str, equal: bool) -> None:
    a = AutoModelForCausalLM.from_pretrained(model_a).state_dict()
    b = AutoModelForCausalLM.from_pretrained(model_b).state_dict()
    assert a.keys() == b.keys()
    same = {name for name in a if torch.equal(a[name], b[name])}
    if equal:
        assert same == set(a), f"differ: {sorted(set(a) - same)}"
    else:
        assert not same, f"unchanged by training: {sorted(same)}"


@pytest.fixture(scope="module")
def tiny_base_lm(tmp_path_factory) -> str:
    """The tiny Llama without a chat template, as a base model is: the stage must give it one."""
    folder = build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-base-lm")))
    os.remove(os.path.join(folder, "chat_template.jinja"))
    config_path = os.path.join(folder, "tokenizer_config.json")
    config = json.loads(Path(config_path).read_text())
    config.pop("chat_template", None)
    Path(config_path).write_text(json.dumps(config))
    assert AutoTokenizer.from_pretrained(folder).chat_template is None
    return folder


@pytest.fixture(scope="module")
def sft_run(tiny_base_lm, messages_dataset, tmp_path_factory):
    """One in-process run of the stage on CPU; returns (trainer, output_dir)."""
    output_dir = str(tmp_path_factory.mktemp("sft-run"))
    script_args, training_args, model_args = parse(
        "--model_name_or_path", tiny_base_lm, "--dataset_name", messages_dataset, "--output_dir", output_dir
    )
    return run_sft(script_args, training_args, model_args), output_dir


def test_script_arguments_are_documented():
    assert_config_documented(SFTScriptArguments)


def test_help_formats():
    # TRL's `test_help_no_type_error`: a stray `%` in a help text makes argparse fail here
    text = make_parser(prog="instrl-trl sft").format_help()
    assert text.startswith("usage: instrl-trl sft")
    for option in ("--messages_column", "--policy_id", "--max_length", "--use_peft"):
        assert option in text


def test_bf16_defaults_from_the_device():
    _, training_args, _ = make_parser().parse_args_and_config(["--output_dir", "data/x"])
    assert training_args.bf16 == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def test_run_trains_and_saves_a_model_that_loads(sft_run, tiny_base_lm):
    trainer, output_dir = sft_run
    assert trainer.state.global_step == 4
    assert [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert_weights(output_dir, tiny_base_lm, equal=False)
    for filename in ("config.json", "model.safetensors", "tokenizer.json", "train_results.json", "trainer_state.json"):
        assert os.path.isfile(os.path.join(output_dir, filename)), filename


def test_rerun_on_another_dataset_is_refused(sft_run, tiny_base_lm, messages_dataset, tmp_path):
    _, output_dir = sft_run
    other = write_messages_parquet(tmp_path / "other" / "data", [USER_ASSISTANT] * 8)
    refused = parse("--model_name_or_path", tiny_base_lm, "--dataset_name", other, "--output_dir", output_dir)
    with pytest.raises(RunFingerprintError, match=r"`dataset`: \"\w+\" before, \"\w+\" now") as info:
        run_sft(*refused)
    assert "`model`" not in str(info.value) and "--overwrite_output_dir" in str(info.value)
    # Another learning rate on the same data is another run too
    refused = parse("--model_name_or_path", tiny_base_lm, "--dataset_name", messages_dataset,
                    "--output_dir", output_dir, "--learning_rate", "0.5")  # fmt: skip
    with pytest.raises(RunFingerprintError, match="`learning_rate`") as info:
        run_sft(*refused)
    assert "`dataset`" not in str(info.value)


def test_max_steps_0_is_refused_before_training(messages_dataset, tmp_path):
    args = parse("--model_name_or_path", "unused", "--dataset_name", messages_dataset, "--output_dir",
                 str(tmp_path / "sft"), "--max_steps", "0")  # fmt: skip
    with pytest.raises(ValueError, match="`max_steps` is 0"):
        run_sft(*args)
    assert not (tmp_path / "sft").exists()


def test_run_gives_a_base_model_the_default_chat_template(sft_run):
    _, output_dir = sft_run
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    text = tokenizer.apply_chat_template(USER_ASSISTANT, tokenize=False)
    assert text == "<|im_start|>user\nName a river.<|end|>\n<|im_start|>assistant\nThe Ebro.<|end|>\n"
    prompt = tokenizer.apply_chat_template(USER_ASSISTANT[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    # `{% generation %}` marks the assistant's tokens, for `assistant_only_loss=True`
    encoded = tokenizer.apply_chat_template(USER_ASSISTANT, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(masked) == tokenizer.decode(tokenizer("The Ebro.<|end|>")["input_ids"])


def test_run_writes_the_card_and_the_loss_plot(sft_run):
    trainer, output_dir = sft_run
    assert os.path.getsize(os.path.join(output_dir, LOSS_PLOT_FILE)) > 0
    card = ModelCard.load(os.path.join(output_dir, "README.md"))
    text = card.content
    for expected in [
        "# Model card for quickstart-sft",  # the recipe's `hub_model_id`
        'model="instrl-trl/quickstart-sft"',
        "fine-tuned from a local base model",  # a local path never reaches the card
        "[instrl-trl/quickstart-instructions](https://huggingface.co/datasets/instrl-trl/quickstart-instructions)",
        f"[{POLICY_ID}](https://huggingface.co/{POLICY_ID})",  # read from the dataset's card
        "| learning_rate | 0.0001 |",
        "| max_steps | 4 |",
        "| per_device_train_batch_size | 8 |",
        "| max_length | 256 |",
        "| lr_scheduler_type | cosine |",
        "| precision | fp32 |",
        "| DeepSpeed | none |",
        "with the loss on\nevery token",
        "gave it a simple ChatML-like one",
        f"![Training loss]({LOSS_PLOT_FILE})",
        "- Optimizer steps: 4",
        f"- Final training loss (mean over the run): {trainer.state.log_history[-1]['train_loss']:.4f}",
        "Not evaluated yet.",
        f"- TRL: {framework_versions()['trl_version']}",
        # the training data's constraint ids, carried on from the dataset's card
        "Rows per constraint family: `ifeval` 12, `ifbench` 2.",
        "| `punctuation:no_comma` | 12 |\n| `count:numbers` | 2 |",
    ]:
        assert expected in text, expected
    assert card.data.to_dict()["instrl_trl"] == {"constraint_ids": {"punctuation:no_comma": 12, "count:numbers": 2}}
    assert sorted(card.data.tags) == ["instrl-trl", "sft", "teams-rl", "trl"]
    assert card.data.datasets == ["instrl-trl/quickstart-instructions"]
    assert card.data.base_model is None
    assert output_dir not in text and "/tmp/" not in text


def test_card_with_hub_base_model_and_eval_results():
    results = [
        EvalResult(task_type="text-generation", dataset_type="google/IFEval", dataset_name="IFEval",
                   metric_type="accuracy", metric_name="prompt-level strict accuracy", metric_value=0.42),
    ]  # fmt: skip
    card = build_sft_card(
        model_name="llama-7b-sft",
        hyperparameters={"learning_rate": 2e-5, "num_train_epochs": 3},
        deepspeed_stage="3",
        base_model="huggyllama/llama-7b",
        hub_model_id="someone/llama-7b-sft",
        dataset_id="someone/instructions",
        lora={"r": 16, "alpha": 32},
        eval_results=results,
        tags=["custom"],
    )
    text = str(card)
    outside_bibtex = re.sub(r"```bibtex\n.*?```", "", text, flags=re.DOTALL)
    assert not [marker for marker in ("{{", "}}", "{%", "%}") if marker in outside_bibtex]
    for expected in [
        "[huggyllama/llama-7b](https://huggingface.co/huggyllama/llama-7b)",
        "| learning_rate | 2e-05 |",
        "| DeepSpeed | ZeRO stage 3 |",
        "| PEFT | LoRA (r=16, alpha=32) |",
        "| IFEval | prompt-level strict accuracy | 0.42 |",
    ]:
        assert expected in text, expected
    assert "Not evaluated yet" not in text
    data = ModelCard(text).data
    assert data.base_model == "huggyllama/llama-7b"
    assert "custom" in data.tags and "sft" in data.tags
    assert data.eval_results[0].metric_value == 0.42  # the `model-index` metadata


def test_policy_from_dataset_card(messages_dataset, tmp_path):
    assert policy_from_dataset_card(messages_dataset) == POLICY_ID  # `data/` -> the card in its parent
    assert policy_from_dataset_card(str(Path(messages_dataset).parent)) == POLICY_ID
    (tmp_path / "README.md").write_text("- Operation policy: a local policy\n")
    assert policy_from_dataset_card(str(tmp_path)) is None


def test_training_constraints_are_read_from_the_rows_before_the_card(tmp_path):
    rows = [[{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}]] * 3
    constraints = [[{"instruction_id": "punctuation:no_comma", "kwargs": "{}"}], [], None]
    folder = write_messages_parquet(tmp_path / "data", rows, constraints=constraints)
    (tmp_path / "README.md").write_text(f"---\n{CARD_CONSTRAINTS_YAML}---\n")
    recorded = read_training_constraints(folder)
    assert recorded == {"constraint_ids": {"punctuation:no_comma": 1}, "constraint_families": {"ifeval": 1}}
    # without the column, the card's metadata; without either, not recorded
    assert read_training_constraints(write_messages_parquet(tmp_path / "other" / "data", rows)) is None
    card = build_sft_card(model_name="m", hyperparameters={}, training_constraints=recorded)
    assert card.data.to_dict()["instrl_trl"] == {"constraint_ids": {"punctuation:no_comma": 1}}
    assert "Not recorded" in build_sft_card(model_name="m", hyperparameters={}).content


def test_card_links_a_hub_dataset_never_a_local_one(messages_dataset):
    assert hub_dataset_id(SFTScriptArguments(dataset_name="someone/instructions")) == "someone/instructions"
    assert hub_dataset_id(SFTScriptArguments(dataset_name=messages_dataset)) is None
    local_with_id = SFTScriptArguments(dataset_name=messages_dataset, hub_dataset_id="someone/instructions")
    assert hub_dataset_id(local_with_id) == "someone/instructions"


def test_plot_loss_curve_without_a_logged_loss(tmp_path):
    assert not plot_loss_curve([{"train_loss": 1.0, "step": 2}], str(tmp_path / "plot.png"))
    assert not (tmp_path / "plot.png").exists()


def test_load_messages_dataset_renames_another_column(tmp_path):
    folder = write_messages_parquet(tmp_path / "data", [USER_ASSISTANT] * 3)
    os.rename(os.path.join(folder, "rank-00000-shard-00000.parquet"), os.path.join(folder, "chat.parquet"))
    import pyarrow.parquet as pq

    table = pq.read_table(os.path.join(folder, "chat.parquet")).rename_columns(["conversation"])
    pq.write_table(table, os.path.join(folder, "chat.parquet"))
    dataset = load_messages_dataset(folder, messages_column="conversation")
    assert dataset.column_names == ["messages"]
    assert dataset[0]["messages"] == USER_ASSISTANT


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (None, r"no `messages` column \(its columns: prompt\)"),
        ([[]], r"Row 0 of the `messages` column is \[\]"),
        ([USER_ASSISTANT, [{"content": "no role"}]], r"Row 1 of the `messages` column has message 0 without a `role`"),
    ],
    ids=["no-column", "empty-messages", "no-role"],
)
def test_bad_dataset_fails_before_the_model_is_loaded(rows, match, tmp_path):
    folder = tmp_path / "data"
    if rows is None:
        folder.mkdir()
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"prompt": ["Name a river."]}), folder / "shard.parquet")
    else:
        write_messages_parquet(folder, rows)
    # The model path does not exist: only a dataset check that runs first can raise the dataset error
    args = parse("--model_name_or_path", str(tmp_path / "no-model"), "--dataset_name", str(folder),
                 "--output_dir", str(tmp_path / "out"))  # fmt: skip
    with pytest.raises(ValueError, match=match) as error:
        run_sft(*args)
    assert "`instrl-trl generate`" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_the_recipes_named_base_model_is_built_offline_and_fine_tuned(messages_dataset, tmp_path, monkeypatch):
    # The quickstart recipe as written names `instrl-tiny-chat`: no path to give, nothing downloaded
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "models"))
    output_dir = tmp_path / "sft"
    script_args, training_args, model_args = parse("--dataset_name", messages_dataset, "--output_dir", str(output_dir))
    assert model_args.model_name_or_path == models.TINY_CHAT_NAME
    run_sft(script_args, training_args, model_args)
    base = models.resolve_model_name(models.TINY_CHAT_NAME)
    assert Path(base).parent == tmp_path / "models"  # built into the models cache
    assert_weights(str(output_dir), base, equal=False)
    # Built locally, it has no Hub repo: the card names no base model
    assert ModelCard.load(str(output_dir / "README.md")).data.base_model is None


def test_missing_model_names_our_offline_models(messages_dataset, tmp_path):
    script_args, training_args, model_args = parse("--dataset_name", messages_dataset, "--output_dir", str(tmp_path))
    model_args.model_name_or_path = None
    with pytest.raises(ValueError, match="`model_name_or_path` is not set.*instrl-tiny-chat, smollm2-135m-instruct"):
        run_sft(script_args, training_args, model_args)


def test_missing_dataset_name_and_empty_folder(tmp_path):
    _, training_args, model_args = parse("--model_name_or_path", "x", "--output_dir", str(tmp_path))
    with pytest.raises(ValueError, match="`dataset_name` is not set"):
        run_sft(SFTScriptArguments(), training_args, model_args)
    with pytest.raises(ValueError, match=r"holds no `\*\.parquet` file"):
        load_messages_dataset(str(tmp_path))


@pytest.mark.skipif(is_peft_available(), reason="peft is installed")
def test_use_peft_without_peft_names_the_package(messages_dataset, tmp_path):
    args = parse("--model_name_or_path", "x", "--dataset_name", messages_dataset, "--use_peft", "true",
                 "--output_dir", str(tmp_path))  # fmt: skip
    with pytest.raises(ImportError, match="pip install peft"):
        run_sft(*args)


@pytest.mark.skipif(not is_peft_available(), reason="peft is not installed")
def test_lora_adapters_train_and_load(tiny_base_lm, messages_dataset, tmp_path):
    from peft import AutoPeftModelForCausalLM

    output_dir = str(tmp_path / "lora")
    args = parse("--model_name_or_path", tiny_base_lm, "--dataset_name", messages_dataset, "--output_dir", output_dir,
                 "--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj",
                 "v_proj")  # fmt: skip
    trainer = run_sft(*args)
    assert trainer.state.global_step > 0
    assert os.path.isfile(os.path.join(output_dir, "adapter_config.json"))
    model = AutoPeftModelForCausalLM.from_pretrained(output_dir)
    lora_weights = {name: p for name, p in model.named_parameters() if "lora_B" in name}
    assert lora_weights and any(p.abs().sum() > 0 for p in lora_weights.values())  # B starts at zero: it trained
    with open(os.path.join(output_dir, "README.md")) as f:
        assert "LoRA" in f.read()


def test_tokenizer_with_a_chat_template_keeps_it(tiny_causal_lm):
    _, training_args, model_args = parse("--model_name_or_path", tiny_causal_lm, "--output_dir", "data/x")
    tokenizer, default_used = load_tokenizer(model_args, training_args)
    assert not default_used
    assert tokenizer.chat_template != DEFAULT_CHAT_TEMPLATE


def test_push_round_trips_model_and_card(hub, tiny_causal_lm, messages_dataset, tmp_path):
    output_dir = str(tmp_path / "sft")
    args = parse("--model_name_or_path", tiny_causal_lm, "--dataset_name", messages_dataset, "--output_dir",
                 output_dir, "--push_to_hub", "true", "--hub_model_id", "user/sft-model",
                 "--max_steps", "2")  # fmt: skip
    run_sft(*args)

    assert_weights("user/sft-model", output_dir, equal=True)
    card = ModelCard.load("user/sft-model")
    assert {"instrl-trl", "trl", "sft"} <= set(card.data.tags)
    assert "# Model card for sft-model" in card.content  # ours, not TRL's
    files = HfApi().list_repo_files("user/sft-model")
    assert LOSS_PLOT_FILE in files and "tokenizer.json" in files
    assert not [name for name in files if name.startswith("checkpoint-")]
    assert os.path.isfile(os.path.join(output_dir, "model.safetensors"))  # the local copy stays


def test_a_kill_at_any_file_of_a_checkpoint_save_resumes_from_the_complete_one(
    tiny_base_lm, messages_dataset, tmp_path
):
    # Issue 22: what a kill -9 leaves at each file of `checkpoint-4`'s save (in the order the Trainer writes them,
    # `trainer_state.json` last): the files before it. Every such state resumes from `checkpoint-2`, to the weights of
    # the uninterrupted run.
    def run(output_dir: Path) -> None:
        arguments = ["--model_name_or_path", tiny_base_lm, "--dataset_name", messages_dataset, "--output_dir",
                     str(output_dir), "--save_strategy", "steps", "--save_steps", "2", "--seed", "0"]  # fmt: skip
        run_sft(*parse(*arguments))

    full = tmp_path / "full"
    run(full)
    written = sorted((full / "checkpoint-4").iterdir(), key=lambda path: path.stat().st_mtime_ns)
    assert written[-1].name == "trainer_state.json"  # the Trainer's own order: the state file marks a complete save
    # A kill before the first file, before the last one, and halfway
    for num_files in sorted({0, len(written) // 2, len(written) - 1}):
        killed = tmp_path / f"killed-{num_files}"
        # The run as it stood: `checkpoint-2` complete, no final model yet
        shutil.copytree(full / "checkpoint-2", killed / "checkpoint-2")
        shutil.copy(full / "_run_fingerprint.json", killed)
        (killed / "checkpoint-4").mkdir()
        for path in written[:num_files]:
            shutil.copy(path, killed / "checkpoint-4" / path.name)
        run(killed)
        assert (killed / "incomplete-checkpoint-4").is_dir()
        assert_weights(str(full), str(killed), equal=True)
