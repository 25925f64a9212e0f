"""
The SFT stage: fine-tune a base model on the generated instruction dataset with TRL's [`~trl.SFTTrainer`], in the
order of the alignment-handbook's `scripts/sft.py`: seed -> logging -> last checkpoint -> dataset -> tokenizer ->
model -> trainer -> train -> metrics and state -> save -> card -> push. Each step is one small function; the training
itself is entirely `SFTTrainer`'s.
"""

import json
import logging
import os
import sys
from dataclasses import asdict

import datasets
import transformers
from accelerate.logging import get_logger
from datasets import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase, set_seed
from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config, get_quantization_config

from ..data.loading import load_dataset_by_name
from ..data.training_constraints import read_training_constraints
from ..hub.push import push_folder
from ..models.builtin import MODEL_NAMES, card_base_model, resolve_model_name
from ..runs.checkpoints import check_max_steps, find_resume_checkpoint
from ..runs.fingerprint import TRAINING_OUTPUTS, training_fingerprint
from ..runs.folder import claim_run_folder, fingerprint_folder, fingerprint_texts
from ..sft.card import policy_from_dataset_card, write_sft_card
from ..sft.sft_config import SFTScriptArguments


logger = get_logger(__name__)

# For base models that ship no chat template: ChatML's turn markers, each turn closed by the tokenizer's own EOS
# token, so no token is added (no embedding resize) and the model learns to stop after its answer. The
# `{% generation %}` block marks the assistant's tokens, so `assistant_only_loss=True` works with it too.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def run_sft(script_args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig) -> SFTTrainer:
    r"""
    Fine-tunes `model_args.model_name_or_path` on the `messages` of `script_args.dataset_name`, saves the model, its
    card and loss plot to `training_args.output_dir`, and pushes them when `training_args.push_to_hub` is set.

    The dataset is checked before any model is loaded, and a run finds its last checkpoint in `output_dir` and resumes
    from it. Under `accelerate launch` (DDP, DeepSpeed ZeRO-2/3) every process calls this function; the card and the
    push happen on the main process only.

    Args:
        script_args ([`~instrl_trl.sft.sft_config.SFTScriptArguments`]):
            The dataset and what the card records about it.
        training_args ([`~trl.SFTConfig`]):
            Passed to [`~trl.SFTTrainer`] as is (the model's loading arguments are added to `model_init_kwargs`).
        model_args ([`~trl.ModelConfig`]):
            The base model, its dtype, and the optional LoRA adapters (`use_peft`, needs `pip install peft`).

    Returns:
        [`~trl.SFTTrainer`]: The trainer, after training (its distributed process group is closed).

    Raises:
        `ValueError`: If `model_name_or_path` or `dataset_name` is missing, or the dataset has no well-formed
            `messages` column; `ImportError` if `use_peft` is set and `peft` is not installed.
    """
    check_arguments(script_args, model_args)
    check_max_steps(training_args)
    set_seed(training_args.seed)
    setup_logging(training_args)
    dataset = load_messages_dataset(
        script_args.dataset_name, script_args.dataset_config, script_args.dataset_split, script_args.messages_column
    )
    fingerprint = sft_fingerprint(dataset, training_args, model_args)
    with claim_run_folder(
        training_args.output_dir, "sft", fingerprint, script_args.overwrite_output_dir, TRAINING_OUTPUTS
    ):
        return _train_and_save(script_args, training_args, model_args, dataset)


def sft_fingerprint(dataset: Dataset, training_args: SFTConfig, model_args: ModelConfig) -> dict:
    """
    What defines an SFT run's output: the conversations' digest, the base model (its files' digest when local), its
    loading and LoRA settings, and the training settings that change the weights.
    """
    model = {key: value for key, value in asdict(model_args).items() if key != "model_name_or_path"}
    return {
        "dataset": fingerprint_texts(json.dumps(messages, sort_keys=True) for messages in dataset["messages"]),
        "model": model_args.model_name_or_path,
        "model_files": fingerprint_folder(model_args.model_name_or_path),
        "model_args": model,
        **training_fingerprint(training_args),
    }


def _train_and_save(
    script_args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig, dataset: Dataset
) -> SFTTrainer:
    checkpoint = find_resume_checkpoint(
        training_args.output_dir, training_args.resume_from_checkpoint, logger.info, logger.warning
    )
    tokenizer, default_chat_template = load_tokenizer(model_args, training_args)
    trainer = SFTTrainer(
        model=prepare_model(model_args, training_args),
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
    )
    train(trainer, checkpoint, num_samples=len(dataset))
    trainer.save_model(training_args.output_dir)  # every process: ZeRO-3 gathers the shards here
    if trainer.accelerator.is_main_process:
        lora = {"r": model_args.lora_r, "alpha": model_args.lora_alpha} if model_args.use_peft else None
        write_sft_card(
            trainer,
            base_model=card_base_model(model_args.model_name_or_path),
            dataset_id=hub_dataset_id(script_args),
            policy_id=script_args.policy_id or policy_from_dataset_card(script_args.dataset_name),
            default_chat_template=default_chat_template,
            lora=lora,
            training_constraints=read_training_constraints(
                script_args.dataset_name, script_args.dataset_config, script_args.dataset_split
            ),
        )
        if training_args.push_to_hub:
            push_model(trainer)
        print(f"Model saved to {os.path.abspath(training_args.output_dir)}")  # noqa: T201
    trainer.accelerator.wait_for_everyone()
    trainer.end()
    return trainer


def check_arguments(script_args: SFTScriptArguments, model_args: ModelConfig) -> None:
    """Fails before anything is loaded on a missing model or dataset, or LoRA without `peft` installed."""
    if not model_args.model_name_or_path:
        raise ValueError(
            "`model_name_or_path` is not set: pass the base model's Hub id or local folder, or one of instrl-trl's "
            f"offline models ({', '.join(MODEL_NAMES)}; see `instrl_trl/models/builtin.py`)."
        )
    if not script_args.dataset_name:
        raise ValueError(
            "`dataset_name` is not set: pass the Hub id of a dataset written by `instrl-trl generate`, or its local "
            "folder of parquet shards (e.g. `data/quickstart-dataset/data`)."
        )
    if model_args.use_peft:
        from transformers.utils import is_peft_available

        if not is_peft_available():
            raise ImportError("`use_peft=True` trains LoRA adapters with the `peft` library: `pip install peft`.")


def hub_dataset_id(script_args: SFTScriptArguments) -> str | None:
    """The dataset's Hub id for the card: `hub_dataset_id`, else `dataset_name` unless that is a local path."""
    if script_args.hub_dataset_id:
        return script_args.hub_dataset_id
    return None if os.path.exists(script_args.dataset_name) else script_args.dataset_name


def setup_logging(training_args: SFTConfig) -> None:
    """
    The handbook's logging set-up: the main process logs at `log_level`, the others at `log_level_replica`; our own
    messages (resume, save, push) show at the default `log_level="passive"`.
    """
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logging.getLogger("instrl_trl").setLevel(logging.INFO if training_args.log_level == "passive" else log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def load_messages_dataset(
    dataset_name: str, dataset_config: str | None = None, split: str = "train", messages_column: str = "messages"
) -> Dataset:
    r"""
    Loads the SFT dataset and keeps only its chat column, checked and named `messages` (what [`~trl.SFTTrainer`]
    recognises as conversational).

    Args:
        dataset_name (`str`):
            A Hub dataset id or a local path, loaded by [`~instrl_trl.data.loading.load_dataset_by_name`]: a folder of
            parquet shards (or a folder holding them under `data/`, as `instrl-trl generate` writes), a file, or a
            `save_to_disk` folder.
        dataset_config (`str`, *optional*):
            Configuration name of the Hub dataset.
        split (`str`, *optional*, defaults to `"train"`):
            Split of the Hub dataset (a local path is read as one split).
        messages_column (`str`, *optional*, defaults to `"messages"`):
            Column holding each row's conversation: a list of `{"role": ..., "content": ...}` dicts.

    Returns:
        [`~datasets.Dataset`]: One column, `messages`.

    Raises:
        `ValueError`: If a local folder holds no parquet file, or the column is missing or ill-formed (see
            [`check_messages`]).
    """
    dataset = load_dataset_by_name(dataset_name, dataset_config, split)
    check_messages(dataset, messages_column)
    dataset = dataset.select_columns([messages_column])
    return dataset if messages_column == "messages" else dataset.rename_column(messages_column, "messages")


def check_messages(dataset: Dataset, messages_column: str = "messages") -> None:
    """
    Checks that every row of `messages_column` is a non-empty list of messages, each a dict with a non-empty string
    `role` and a string `content`. Raises a `ValueError` naming the column, the first bad row and the fix.
    """
    fix = (
        f"SFT needs, in `{messages_column}`, a non-empty list of `{{'role': ..., 'content': ...}}` dicts per row, as "
        "`instrl-trl generate` writes them"
    )
    if messages_column not in dataset.column_names:
        raise ValueError(
            f"The dataset has no `{messages_column}` column (its columns: {', '.join(dataset.column_names)}). {fix}. "
            "Set `--messages_column` to the column holding the conversations, or build the dataset with "
            "`instrl-trl generate`."
        )
    for index, messages in enumerate(dataset[messages_column]):
        problem = _message_problem(messages)
        if problem is not None:
            raise ValueError(f"Row {index} of the `{messages_column}` column {problem}. {fix}; fix or drop that row.")


def _message_problem(messages) -> str | None:
    if not isinstance(messages, list) or not messages:
        return f"is {messages!r}, not a non-empty list of messages"
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"has message {position} = {message!r}, not a dict"
        role = message.get("role")
        if not isinstance(role, str) or not role:
            return f"has message {position} without a `role`"
        if not isinstance(message.get("content"), str):
            return f"has message {position} without a string `content`"
    return None


def load_tokenizer(model_args: ModelConfig, training_args: SFTConfig) -> tuple[PreTrainedTokenizerBase, bool]:
    """
    The base model's tokenizer, given [`DEFAULT_CHAT_TEMPLATE`] if it has none; returns it and whether it did. One of
    our model names (`instrl-tiny-chat`, `smollm2-135m-instruct`) is built into the cache here, on first use.
    """
    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_name(model_args.model_name_or_path),
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    if tokenizer.chat_template is not None or training_args.chat_template_path is not None:
        return tokenizer, False
    logger.info(f"{model_args.model_name_or_path} has no chat template; using instrl-trl's ChatML-like default.")
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer, True


def prepare_model(model_args: ModelConfig, training_args: SFTConfig) -> str:
    """
    Returns the model *name* for [`~trl.SFTTrainer`] (our model names resolved to their folder), with its loading
    arguments put in `model_init_kwargs`.

    `SFTTrainer` loads it with `from_pretrained` after the [`~trl.SFTConfig`] exists, so under ZeRO-3 with
    `zero3_init_flag: true` the weights are partitioned while loading instead of first materialised on every process.
    """
    model_init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    training_args.model_init_kwargs = {**model_init_kwargs, **(training_args.model_init_kwargs or {})}
    return resolve_model_name(model_args.model_name_or_path)


def train(trainer: SFTTrainer, checkpoint: str | None, num_samples: int) -> None:
    """Trains (resuming from `checkpoint`), then logs and saves the metrics and the trainer state."""
    result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = {**result.metrics, "train_samples": num_samples}
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()


def push_model(trainer: SFTTrainer) -> str:
    """
    Pushes the saved model, tokenizer, card and plot (the files at the top of `output_dir`, not the checkpoints) in one
    commit, with [`~instrl_trl.hub.push.push_folder`]'s retries; the local copy stays whatever happens.
    """
    output_dir = trainer.args.output_dir
    repo_id = trainer.hub_model_id or trainer.args.hub_model_id
    if repo_id is None:
        raise ValueError("`push_to_hub=True` needs `hub_model_id`, the Hub repository to push the model to.")
    # With `push_to_hub`, the Trainer also pushes checkpoints in the background (`hub_strategy`): let them land first,
    # so that the final weights and our card are the last commit.
    if getattr(trainer, "push_in_progress", None) is not None:
        trainer.push_in_progress.wait_until_done()
    files = sorted(name for name in os.listdir(output_dir) if os.path.isfile(os.path.join(output_dir, name)))
    url = push_folder(
        output_dir,
        repo_id,
        "model",
        allow_patterns=files,
        private=bool(trainer.args.hub_private_repo),
        commit_message="End of training (instrl-trl sft)",
    )
    logger.info(f"Model pushed: {url}")
    return url
