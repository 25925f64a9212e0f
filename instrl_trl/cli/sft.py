"""Fine-tune a base model on the instruction dataset with TRL's SFTTrainer (DeepSpeed through accelerate)."""

import argparse
from dataclasses import dataclass, field


@dataclass
class SFTScriptArguments:
    r"""
    Script arguments of the `sft` stage.

    Parameters:
        dataset_name (`str`, *optional*):
            The instruction dataset: a Hub dataset id, or a local folder of parquet shards as `instrl-trl generate`
            writes them (e.g. `data/quickstart-dataset/data`), or a `.parquet`, `.json` or `.jsonl` file. Required.
        dataset_config (`str`, *optional*):
            Configuration name of the Hub dataset.
        dataset_split (`str`, *optional*, defaults to `"train"`):
            Split of the Hub dataset to train on.
        messages_column (`str`, *optional*, defaults to `"messages"`):
            Column holding each row's conversation, a list of `{"role": ..., "content": ...}` dicts. It is checked
            before the model is loaded.
        hub_dataset_id (`str`, *optional*):
            Hub id of the dataset, for the model card's link when `dataset_name` is a local folder. Defaults to
            `dataset_name` when that is a Hub id.
        policy_id (`str`, *optional*):
            Hub id of the operation policy that generated the dataset, for the model card. Defaults to the one named
            in the dataset's card, if any.
    """

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Instruction dataset: a Hub id, a local folder of parquet shards, or a local file."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Configuration name of the Hub dataset."})
    dataset_split: str = field(default="train", metadata={"help": "Split of the Hub dataset to train on."})
    messages_column: str = field(
        default="messages",
        metadata={"help": "Column holding each row's conversation: a list of {role, content} dicts."},
    )
    hub_dataset_id: str | None = field(
        default=None,
        metadata={"help": "Hub id of the dataset, for the model card when `dataset_name` is a local folder."},
    )
    policy_id: str | None = field(
        default=None,
        metadata={"help": "Hub id of the operation policy behind the dataset. Defaults to the dataset card's."},
    )


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    import torch
    from trl import ModelConfig, SFTConfig, TrlParser

    dataclass_types = (SFTScriptArguments, SFTConfig, ModelConfig)
    if subparsers is not None:
        parser = subparsers.add_parser("sft", help=__doc__, dataclass_types=dataclass_types)
    else:
        parser = TrlParser(dataclass_types, prog=prog)
    # `SFTConfig` turns bf16 on whatever the device, and `TrainingArguments` then refuses a machine without a bf16 GPU
    # unless `use_cpu` is set. Default it from the device instead, as `InstructionGenerationConfig` does: a GPU recipe
    # then gets bf16 on its GPUs and still parses on a CPU machine. A recipe or `--bf16` overrides this default.
    parser.set_defaults(bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return parser


def main(script_args: SFTScriptArguments, training_args, model_args) -> str:
    """Fine-tunes, saves the model and its card, and pushes when asked; returns `output_dir`."""
    import os

    from ..sft import run_sft

    trainer = run_sft(script_args, training_args, model_args)
    if trainer.accelerator.is_main_process:
        print(f"Model saved to {os.path.abspath(training_args.output_dir)}")  # noqa: T201
    return training_args.output_dir
