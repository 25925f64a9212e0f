"""Fine-tune a base model on the instruction dataset with TRL's SFTTrainer (DeepSpeed through accelerate)."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    import torch
    from trl import ModelConfig, SFTConfig, TrlParser

    from ..sft.sft_config import SFTScriptArguments

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


def main(script_args, training_args, model_args) -> str:
    """Fine-tunes, saves the model and its card, and pushes when asked; returns `output_dir`."""
    from ..stages.sft import run_sft

    run_sft(script_args, training_args, model_args)
    return training_args.output_dir
