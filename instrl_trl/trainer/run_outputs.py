"""
What both trainers (the PPO policy's [`InstructionGenerationTrainer`], the GRPO [`InstructorTrainer`]) add to TRL's
Trainer in the same way, written once: their resumable state in every checkpoint, and `queries.json` and our card
beside every saved model.
"""

import os
from pathlib import Path
from typing import ClassVar

from accelerate.logging import get_logger
from huggingface_hub import ModelCard

from ..backends.accounting import QUERIES_FILE, write_queries_file
from ..backends.review_statistics import ReviewStatistics
from ..runs.checkpoints import load_resumable_state, save_resumable_state


logger = get_logger(__name__)


class RunOutputsMixin:
    r"""
    Mixed into a [`~transformers.Trainer`] subclass, before it in the bases. The trainer provides:

    - `_resumable_state_file` (`str`): the per-rank file of its state in a checkpoint, with a `{rank}` field;
    - `_resumable_state()` / `_restore_resumable_state(state)`: that state as a dict, and back (query counts, episode
      totals, reward memories, ...);
    - `_usage_totals()` and `_review_totals()`: per-role usage and the LLM reviewer's sums, over all processes, for
      `queries.json`;
    - `_build_model_card(model_name, dataset_name, tags)`: its card (see [`~instrl_trl.trainer.cards`]).

    The state is written before the Trainer's own checkpoint files: the Trainer writes `trainer_state.json` last, and
    that file marks a checkpoint complete ([`~instrl_trl.runs.checkpoints`]), so a kill at any point never leaves a
    complete-looking checkpoint without it.
    """

    _resumable_state_file: ClassVar[str]

    def _resumable_state(self) -> dict:
        raise NotImplementedError

    def _restore_resumable_state(self, state: dict) -> None:
        raise NotImplementedError

    def _usage_totals(self) -> dict[str, dict[str, float]]:
        raise NotImplementedError

    def _review_totals(self) -> ReviewStatistics | None:
        return None

    def _build_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None):
        raise NotImplementedError

    def _save_checkpoint(self, model, trial):
        checkpoint_dir = os.path.join(self._get_output_dir(trial), f"checkpoint-{self.state.global_step}")
        filename = self._resumable_state_file.format(rank=self.accelerator.process_index)
        save_resumable_state(self._resumable_state(), checkpoint_dir, filename)
        super()._save_checkpoint(model, trial)

    def _load_optimizer_and_scheduler(self, checkpoint):
        # Called on resume for every backend, DeepSpeed included (`_load_from_checkpoint` is not)
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        filename = self._resumable_state_file.format(rank=self.accelerator.process_index)
        state = load_resumable_state(checkpoint, filename)
        if state is None:
            logger.warning(f"No {filename} in {checkpoint}: query counts and episode totals start anew.")
            return
        self._restore_resumable_state(state)

    def _save_run_outputs(self, output_dir: str, **card_values) -> None:
        """`queries.json` (the one format) and our card in `output_dir`, beside the saved model."""
        write_queries_file(
            os.path.join(output_dir, QUERIES_FILE), self._usage_totals(), reviewer=self._review_totals()
        )
        self._build_model_card(**card_values).save(os.path.join(output_dir, "README.md"))

    def _card_name(self, model_name: str | None) -> str:
        """The card's model name: `model_name`, else the Hub repository's or the output folder's name."""
        return model_name or (self.args.hub_model_id or Path(self.args.output_dir).name).split("/")[-1]

    def _card_tags(self, tags: str | list[str] | None) -> list[str]:
        return sorted({*self._tag_names, *([tags] if isinstance(tags, str) else tags or [])})

    def create_model_card(
        self, model_name: str | None = None, dataset_name: str | None = None, tags: str | list[str] | None = None
    ) -> ModelCard | None:
        """Renders our card into `output_dir/README.md` (TRL looks its templates up inside `trl` only)."""
        if not self.is_world_process_zero():
            return None
        card = self._build_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
        card.save(os.path.join(self.args.output_dir, "README.md"))
        return card
