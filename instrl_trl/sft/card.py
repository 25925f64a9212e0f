"""The SFT model card (`model_cards/sft_model_card.md`) and its training-loss plot, filled from a finished run."""

import logging
import os
import re

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..constraints.split import CARD_METADATA_KEY
from ..data.training_constraints import find_dataset_card
from ..hub.cards import render_model_card
from ..hub.plots import pyplot


logger = logging.getLogger(__name__)

LOSS_PLOT_FILE = "loss_curve.png"
SFT_TAGS = ["instrl-trl", "trl", "sft", "teams-rl"]
# The dataset card of `instrl-trl generate` names its policy as "- Operation policy: [id](https://huggingface.co/id)"
_POLICY_LINE = re.compile(r"Operation policy: \[([^\]]+)\]\(https://huggingface\.co/")


def policy_from_dataset_card(dataset_name: str) -> str | None:
    r"""
    Reads the id of the operation policy that generated a dataset from the dataset's card, as `instrl-trl generate`
    writes it.

    Args:
        dataset_name (`str`):
            A Hub dataset id, or a local folder: its `README.md` or, for a `data/` folder of shards, its parent's.

    Returns:
        `str` or `None`: The policy's Hub id, or `None` when there is no card, or the card names no Hub policy.
    """
    card = find_dataset_card(dataset_name)
    text = card.content if card is not None else ""
    match = _POLICY_LINE.search(text)
    return match.group(1) if match else None


def plot_loss_curve(log_history: list[dict], path: str) -> bool:
    """
    Draws the training loss against the step from [`~transformers.TrainerState.log_history`] into a PNG at `path`.
    Returns `False`, and writes nothing, when no training loss was logged (a run shorter than `logging_steps`).
    """
    points = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    if not points:
        return False
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(6, 3))
    axis.plot(*zip(*points, strict=True), marker="o" if len(points) < 30 else None, color="#4c72b0")
    axis.set_xlabel("step")
    axis.set_ylabel("training loss")
    axis.set_title("SFT training loss")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def deepspeed_stage(accelerator) -> str:
    """The ZeRO stage of an [`~accelerate.Accelerator`] running DeepSpeed (`"2"`, `"3"`), else `"none"`."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if accelerator.distributed_type != "DEEPSPEED" or plugin is None:
        return "none"
    return str(plugin.zero_stage)


def training_hyperparameters(args, world_size: int) -> dict[str, object]:
    """The hyper-parameters the card lists, from an [`~trl.SFTConfig`], in reading order."""
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    values = {
        "learning_rate": args.learning_rate,
        "num_train_epochs": args.num_train_epochs,
        "max_steps": args.max_steps if args.max_steps > 0 else None,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "num_processes": world_size,
        "total_train_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * world_size,
        "max_length": args.max_length,
        "packing": args.packing,
        "assistant_only_loss": args.assistant_only_loss,
        "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "warmup_steps": args.warmup_steps or None,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "precision": precision,
        "seed": args.seed,
    }
    return {name: value for name, value in values.items() if value is not None}


def build_sft_card(
    *,
    model_name: str,
    hyperparameters: dict[str, object],
    deepspeed_stage: str = "none",
    base_model: str | None = None,
    hub_model_id: str | None = None,
    dataset_id: str | None = None,
    policy_id: str | None = None,
    train_loss: float | None = None,
    train_runtime: float | None = None,
    global_step: int | None = None,
    loss_plot: str | None = None,
    default_chat_template: bool = False,
    lora: dict[str, int] | None = None,
    eval_results: list[EvalResult] | None = None,
    tags: list[str] | None = None,
    training_constraints: dict[str, dict[str, int]] | None = None,
    **values,
) -> ModelCard:
    r"""
    Renders the SFT model card from `model_cards/sft_model_card.md`.

    Args:
        model_name (`str`):
            Name of the fine-tuned model (the last part of its Hub id).
        hyperparameters (`dict[str, object]`):
            Parameter name -> value, listed in this order (see [`training_hyperparameters`]).
        deepspeed_stage (`str`, *optional*, defaults to `"none"`):
            ZeRO stage of the run (see [`deepspeed_stage`]).
        base_model (`str`, *optional*):
            Hub id of the base model. A local path is left out of the card.
        hub_model_id (`str`, *optional*):
            Hub id of the fine-tuned model, for the quick-start snippet.
        dataset_id (`str`, *optional*):
            Hub id of the instruction dataset.
        policy_id (`str`, *optional*):
            Hub id of the operation policy that generated the dataset.
        train_loss (`float`, *optional*):
            Mean training loss of the run.
        train_runtime (`float`, *optional*):
            Training time in seconds.
        global_step (`int`, *optional*):
            Number of optimizer steps.
        loss_plot (`str`, *optional*):
            File name of the loss plot, relative to the card.
        default_chat_template (`bool`, *optional*, defaults to `False`):
            Whether instrl-trl gave the tokenizer its default chat template (the card then describes it).
        lora (`dict[str, int]`, *optional*):
            `{"r": ..., "alpha": ...}` when LoRA adapters were trained.
        eval_results (`list[~huggingface_hub.EvalResult]`, *optional*):
            Benchmark results: they fill the "Evaluation" section and the `model-index` metadata. Without them the
            section says the model is not evaluated yet.
        tags (`list[str]`, *optional*):
            Extra tags, added to `instrl-trl`, `trl`, `sft` and `teams-rl`.
        training_constraints (`dict`, *optional*):
            The constraint ids the training data carries (`constraint_ids` and `constraint_families`, see
            [`~instrl_trl.data.training_constraints.read_training_constraints`]): listed in the card and kept in its
            `instrl_trl` metadata, where `evaluate` reads them to say whether a benchmark is out-of-distribution.
        **values:
            Other template variables (`wandb_url`, `trackio_url`).

    Returns:
        [`~huggingface_hub.ModelCard`]: The rendered card.
    """
    # Machine-readable, for `evaluate` to compare with a benchmark's ids
    recorded = (
        {CARD_METADATA_KEY: {"constraint_ids": training_constraints["constraint_ids"]}} if training_constraints else {}
    )
    card_data = ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=[dataset_id] if dataset_id else None,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=sorted({*SFT_TAGS, *(tags or [])}),
        eval_results=eval_results,
        **recorded,
    )
    return render_model_card(
        "sft_model_card.md",
        card_data,
        model_name=model_name,
        base_model=base_model,
        hub_model_id=hub_model_id,
        dataset_id=dataset_id,
        policy_id=policy_id,
        hyperparameters=hyperparameters,
        deepspeed_stage=deepspeed_stage,
        use_peft=lora is not None,
        lora_r=(lora or {}).get("r"),
        lora_alpha=(lora or {}).get("alpha"),
        train_loss=train_loss,
        train_runtime=train_runtime,
        global_step=global_step,
        loss_plot=loss_plot,
        default_chat_template=default_chat_template,
        eval_results=eval_results,
        training_constraints=training_constraints,
        **values,
    )


def write_sft_card(
    trainer,
    *,
    base_model: str | None,
    dataset_id: str | None,
    policy_id: str | None,
    default_chat_template: bool = False,
    lora: dict[str, int] | None = None,
    eval_results: list[EvalResult] | None = None,
    training_constraints: dict[str, dict[str, int]] | None = None,
) -> ModelCard:
    """
    Draws the loss plot and renders the card of a trained [`~trl.SFTTrainer`] into `output_dir/README.md` (call it on
    the main process, after `save_model`). Returns the card.
    """
    args = trainer.args
    output_dir = args.output_dir
    has_plot = plot_loss_curve(trainer.state.log_history, os.path.join(output_dir, LOSS_PLOT_FILE))
    summary = next((entry for entry in reversed(trainer.state.log_history) if "train_loss" in entry), {})
    hub_model_id = trainer.hub_model_id or args.hub_model_id
    card = build_sft_card(
        model_name=(hub_model_id or os.path.basename(os.path.abspath(output_dir))).split("/")[-1],
        hyperparameters=training_hyperparameters(args, trainer.accelerator.num_processes),
        deepspeed_stage=deepspeed_stage(trainer.accelerator),
        base_model=base_model,
        hub_model_id=hub_model_id,
        dataset_id=dataset_id,
        policy_id=policy_id,
        train_loss=summary.get("train_loss"),
        train_runtime=summary.get("train_runtime"),
        global_step=trainer.state.global_step,
        loss_plot=LOSS_PLOT_FILE if has_plot else None,
        default_chat_template=default_chat_template,
        lora=lora,
        eval_results=eval_results,
        training_constraints=training_constraints,
    )
    card.save(os.path.join(output_dir, "README.md"))
    return card
