"""What defines a training run's output, so that a rerun into the same `output_dir` resumes the same run only."""

from dataclasses import fields

from transformers import TrainingArguments


# The `TrainingArguments` fields that change the trained weights (the others say where to log, save or push)
TRAINING_FIELDS = (
    "learning_rate",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "optim",
    "optim_args",
    "seed",
    "data_seed",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "label_smoothing_factor",
    "bf16",
    "fp16",
)
# Fields of our configs and TRL's that change how far, how fast or where a run goes, not what it learns
NOT_RESULT_FIELDS = frozenset(
    {
        "query_budget",
        "response_cache",
        "max_failure_fraction",
        "overwrite_output_dir",
        "activation_offloading",
        "dataset_num_proc",
        "eval_packing",
        "trust_remote_code",
        # The instructor's prefetched tool calls train as one call at a time does, bit for bit
        "pipelined_tool_calls",
    }
)
# What a Trainer stage writes besides the final model (which `save_model` overwrites), removed by
# `overwrite_output_dir`; the response cache stays (its answers are keyed by backend, model and prompt)
TRAINING_OUTPUTS = (
    "checkpoint-*",
    "incomplete-checkpoint-*",
    "runs",
    "queries*.json",
    "*_results.json",
    "trainer_state.json",
)


def training_fingerprint(args: TrainingArguments) -> dict:
    """
    The fields of `args` that change the trained weights: those of [`TRAINING_FIELDS`] and every field a subclass
    (TRL's or ours) adds to `TrainingArguments`, but for [`NOT_RESULT_FIELDS`], and for the LLM roles only what
    changes their answers. `max_steps` and `num_train_epochs` are left out: a rerun may train a run further.
    """
    base = {field.name for field in fields(TrainingArguments)}
    values = {name: getattr(args, name) for name in TRAINING_FIELDS if hasattr(args, name)}
    for field in fields(args):
        if field.name in base or field.name in NOT_RESULT_FIELDS or field.name.startswith("log"):
            continue
        values[field.name] = getattr(args, field.name)
    # A config with LLM roles (`RoleArguments`) says which of their settings change the answers
    roles_fingerprint = getattr(args, "roles_fingerprint", None)
    if callable(roles_fingerprint):
        values.update(roles_fingerprint())
    return values
