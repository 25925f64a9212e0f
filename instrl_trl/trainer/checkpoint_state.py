"""
What must survive a resume beyond the Trainer's own state: the value head (its own file) and, per rank, the PPO
micro-step, the rollout buffer, the rollout RNG, the query counts, the run statistics, the Lagrange multiplier and
the reward functions' memories. With them, a resumed run is bitwise the uninterrupted one, even from a checkpoint in
the middle of a rollout's PPO epochs.
"""

import os

import torch
from accelerate.logging import get_logger

from ..policy import load_value_head


logger = get_logger(__name__)

EXTRA_STATE_FILE = "instruction_generation_state_rank{rank}.pt"


class CheckpointStateMixin:
    """Checkpoint hooks of [`InstructionGenerationTrainer`] (GRPO saves its entropy controller the same way)."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_value_head(
            self.accelerator.unwrap_model(model if model is not None else self.model), resume_from_checkpoint
        )

    def _extra_state(self) -> dict:
        novelty_states = {
            name: func.state_dict()
            for name, func in zip(self.reward_func_names, self.reward_funcs, strict=True)
            if hasattr(func, "state_dict")
        }
        return {
            "step": self._step,
            "buffer": self._buffer,
            "buffered_inputs": self._buffered_inputs,
            "cost_multiplier": self.cost_multiplier,
            "accounting": self.accounting.state_dict(),
            "rollout_generator": self._rollout_generator.get_state(),
            "reward_states": novelty_states,
            "statistics": self.statistics.state_dict(),
            "usage_totals": self.usage_totals,
        }

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        checkpoint_dir = os.path.join(self._get_output_dir(trial), f"checkpoint-{self.state.global_step}")
        rank = self.accelerator.process_index
        torch.save(self._extra_state(), os.path.join(checkpoint_dir, EXTRA_STATE_FILE.format(rank=rank)))

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, EXTRA_STATE_FILE.format(rank=self.accelerator.process_index))
        if not os.path.isfile(path):
            logger.warning(f"No {os.path.basename(path)} in {checkpoint}: query counts and rollout state start anew.")
            return
        state = torch.load(path, weights_only=False)
        self._step = state["step"]
        self._buffer = state["buffer"]
        self._buffered_inputs = state["buffered_inputs"]
        self.cost_multiplier = state["cost_multiplier"]
        self.accounting.load_state_dict(state["accounting"])
        self._rollout_generator.set_state(state["rollout_generator"])
        self.statistics.load_state_dict(state["statistics"])
        self.usage_totals = state["usage_totals"]
        for name, func in zip(self.reward_func_names, self.reward_funcs, strict=True):
            if name in state["reward_states"]:
                func.load_state_dict(state["reward_states"][name])
