import os
from pathlib import Path
from typing import ClassVar

import torch
from accelerate.logging import get_logger
from trl import GRPOTrainer

from ...backends.accounting import QUERIES_FILE, ROLES, write_queries_file
from ...backends.costs import cost_per
from ...runs.atomic import write_json_atomically
from ...runs.checkpoints import load_resumable_state, save_resumable_state
from ...tool_environment.environment import INSTRUCTOR_FILE, InstructionEnvironmentFactory
from ...tool_environment.statistics import InstructorStatistics
from .card import build_instructor_card
from .instructor_config import InstructorConfig


logger = get_logger(__name__)

# What generation needs to replay the instructor's episodes: its tools and its user message
USAGE_FIELDS = ("queries", "cache_hits", "failures", "prompt_tokens", "completion_tokens", "seconds")
EXTRA_STATE_FILE = "instructor_state_rank{rank}.pt"


class InstructorTrainer(GRPOTrainer):
    r"""
    TRL's [`~trl.GRPOTrainer`] with an [`InstructionEnvironmentFactory`] as its `environment_factory`: the
    environment's reward is the only reward column. It adds what the instructor's runs need and GRPO does not know:
    query counts per role and episode totals in the logs, `queries.json` and our card next to the saved model, and
    both in every checkpoint (per rank) so that a resumed run keeps counting where it stopped.

    Args:
        model (`str` or [`~transformers.PreTrainedModel`]):
            The instructor, a causal LM with a tool-calling chat template.
        args ([`InstructorConfig`]):
            Configuration.
        train_dataset ([`~datasets.Dataset`]):
            Rows with a conversational `prompt` and the seed instruction (`args.instruction_column`).
        environment_factory ([`InstructionEnvironmentFactory`]):
            Builds the episodes' environments.
        processing_class, callbacks, optimizers, peft_config:
            As in [`~trl.GRPOTrainer`].
    """

    _tag_names: ClassVar[list[str]] = ["trl", "grpo", "instrl-trl", "teams-rl", "instructor"]
    _name = "Instructor"

    def __init__(
        self,
        model,
        args: InstructorConfig,
        train_dataset,
        environment_factory: InstructionEnvironmentFactory,
        processing_class=None,
        callbacks=None,
        optimizers=(None, None),
        peft_config=None,
    ):
        self.instruction_environments = environment_factory
        super().__init__(
            model=model,
            reward_funcs=None,
            args=args,
            train_dataset=train_dataset,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
            peft_config=peft_config,
            environment_factory=environment_factory,
        )

    @property
    def accounting(self):
        return self.instruction_environments.accounting

    @property
    def statistics(self) -> InstructorStatistics:
        return self.instruction_environments.statistics

    def _reduced_totals(self) -> tuple[dict[str, dict[str, float]], InstructorStatistics]:
        """
        Usage per role (queries, cache hits, failures, tokens, seconds) and episode totals summed over all processes,
        with one all-reduce (called in the same order on every rank).
        """
        statistics = self.statistics
        usage = [[float(getattr(self.accounting.usage(role), name)) for name in USAGE_FIELDS] for role in ROLES]
        local = torch.cat([torch.tensor(usage, dtype=torch.float64).flatten(), statistics.as_vector()])
        total = self.accelerator.reduce(local.to(self.accelerator.device), reduction="sum").cpu()
        num_usage = len(ROLES) * len(USAGE_FIELDS)
        rows = total[:num_usage].view(len(ROLES), len(USAGE_FIELDS)).tolist()
        per_role = {
            role: {
                name: value if name == "seconds" else int(value) for name, value in zip(USAGE_FIELDS, row, strict=True)
            }
            for role, row in zip(ROLES, rows, strict=True)
        }
        return per_role, InstructorStatistics.from_vector(total[num_usage:], statistics.action_names)

    def run_totals(self) -> tuple[dict[str, dict[str, float]], InstructorStatistics]:
        """The totals of the last training step over all processes, or this process's own before any step."""
        if getattr(self, "_totals", None) is not None:
            return self._totals
        per_role = {
            role: {name: getattr(self.accounting.usage(role), name) for name in USAGE_FIELDS} for role in ROLES
        }
        return per_role, self.statistics

    def training_step(self, model, inputs, num_items_in_batch=None):
        output = super().training_step(model, inputs, num_items_in_batch)
        # Reduced here, where every rank passes in step, not in `log()`, which may not run on all ranks alike
        self._totals = self._reduced_totals()
        return output

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training and getattr(self, "_totals", None) is not None:
            per_role, statistics = self._totals
            queries = {role: int(usage["queries"]) for role, usage in per_role.items()}
            for role, count in queries.items():
                if count:
                    logs[f"queries/{role}"] = count
            logs["queries/total"] = sum(queries.values())
            if statistics.num_episodes:
                logs["episode/accepted"] = statistics.num_accepted / statistics.num_episodes
                logs["episode/stop_rate"] = statistics.num_stopped / statistics.num_episodes
            if statistics.num_accepted:  # the PPO trainer's key and rule (`inf` is not logged)
                logs["queries/per_evolution"] = cost_per(sum(queries.values()), statistics.num_accepted)
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        super()._save(output_dir, state_dict=state_dict)
        if self.args.should_save:
            per_role, _ = self.run_totals()
            write_queries_file(os.path.join(output_dir, QUERIES_FILE), per_role)
            settings = {
                "operations": self.instruction_environments.operations.names,
                "task_prompt": self.args.task_prompt,
                "max_operations": self.args.max_operations,
            }
            write_json_atomically(os.path.join(output_dir, INSTRUCTOR_FILE), settings)
            self._build_card().save(os.path.join(output_dir, "README.md"))

    def _build_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None):
        name_or_path = self.accelerator.unwrap_model(self.model).config._name_or_path
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        factory = self.instruction_environments
        per_role, statistics = self.run_totals()
        return build_instructor_card(
            model_name=model_name or (self.args.hub_model_id or Path(self.args.output_dir).name).split("/")[-1],
            operations=factory.operations,
            statistics=statistics,
            queries={role: int(usage["queries"]) for role, usage in per_role.items()},
            reward_weights=dict(zip(self.args.reward_funcs, factory.reward_weights.tolist(), strict=True)),
            stop_reward=factory.stop_reward,
            task_prompt=self.args.task_prompt,
            tags=sorted({*self._tag_names, *tags}),
            base_model=name_or_path if name_or_path and not os.path.isdir(name_or_path) else None,
            hub_model_id=self.args.hub_model_id,
            dataset_name=dataset_name or self.args.dataset_name,
        )

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None):
        """Renders our card from `model_cards/instructor_card.md` into `output_dir/README.md` (TRL's is not ours)."""
        if not self.is_world_process_zero():
            return
        self._build_card(model_name, dataset_name, tags).save(os.path.join(self.args.output_dir, "README.md"))

    def _extra_state(self) -> dict:
        reward_states = {
            str(index): func.state_dict()
            for index, func in enumerate(self.instruction_environments.reward_funcs)
            if hasattr(func, "state_dict")
        }
        return {
            "accounting": self.accounting.state_dict(),
            "statistics": self.statistics.state_dict(),
            "reward_states": reward_states,
        }

    def _save_checkpoint(self, model, trial):
        # Our state first: the Trainer writes `trainer_state.json` last, which marks the checkpoint complete
        checkpoint_dir = os.path.join(self._get_output_dir(trial), f"checkpoint-{self.state.global_step}")
        filename = EXTRA_STATE_FILE.format(rank=self.accelerator.process_index)
        save_resumable_state(self._extra_state(), checkpoint_dir, filename)
        super()._save_checkpoint(model, trial)

    def _load_optimizer_and_scheduler(self, checkpoint):
        # Called on resume for every backend (DeepSpeed included), unlike `_load_from_checkpoint`
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        filename = EXTRA_STATE_FILE.format(rank=self.accelerator.process_index)
        state = load_resumable_state(checkpoint, filename)
        if state is None:
            logger.warning(f"No {filename} in {checkpoint}: query counts and episode totals start anew.")
            return
        self.accounting.load_state_dict(state["accounting"])
        self.statistics.load_state_dict(state["statistics"])
        for index, func in enumerate(self.instruction_environments.reward_funcs):
            if str(index) in state["reward_states"]:
                func.load_state_dict(state["reward_states"][str(index)])
