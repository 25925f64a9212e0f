from dataclasses import dataclass, field

import torch


@dataclass
class OperationTrainingDefaults:
    r"""
    The defaults that both trainers' configs ([`InstructionGenerationConfig`], [`InstructorConfig`]) change from
    [`~transformers.TrainingArguments`]. Listed first among a config's bases, so that its defaults win over TRL's.

    Parameters:
        gradient_checkpointing (`bool`, *optional*):
            Deprecated alias of `activation_checkpointing`. Unset (so off) instead of TRL's `True`: it only slows the
            small policy and CPU updates (1.68 s -> 2.11 s a PPO update measured on 2 cores); turn it on for big
            models.
        bf16 (`bool`, *optional*):
            Use bf16 mixed precision. Unset: `True` on a bf16-capable GPU, else `False` (fp32 on CPU, exact and
            reproducible); see [`resolve_bf16`].
        dataloader_pin_memory (`bool`, *optional*, defaults to `False`):
            Whether to pin memory in data loaders: off, nothing to pin on CPU (rollouts and seeds are text).
    """

    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "Deprecated alias of `activation_checkpointing`; off by default (slower)."}
    )
    bf16: bool | None = field(
        default=None,
        metadata={"help": "Use bf16 mixed precision. Defaults to True on a bf16-capable GPU, else False (CPU: fp32)."},
    )
    dataloader_pin_memory: bool = field(
        default=False, metadata={"help": "Whether to pin memory in data loaders. Off: nothing to pin on CPU."}
    )

    def resolve_bf16(self) -> None:
        """Sets an unset `bf16` from the device: on with a bf16-capable GPU (and not `use_cpu`), else off."""
        if self.bf16 is None:
            self.bf16 = bool(not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported())
