import os
from typing import ClassVar

from trl import GRPOTrainer

from ...backends.costs import cost_per
from ...backends.role_calls import endpoint_of
from ...backends.run_statistics import RunStatistics, local_usage, reduce_usage
from ...runs.atomic import write_json_atomically
from ...tool_environment.environment import INSTRUCTOR_FILE, InstructionEnvironmentFactory
from ...tool_environment.prefetch import ToolCallPrefetcher
from ..cards import build_operation_card
from ..run_outputs import RunOutputsMixin
from ..server_fill import warn_if_rollouts_leave_slots_idle
from .instructor_config import InstructorConfig


EXTRA_STATE_FILE = "instructor_state_rank{rank}.pt"


class InstructorTrainer(RunOutputsMixin, GRPOTrainer):
    r"""
    TRL's [`~trl.GRPOTrainer`] with an [`InstructionEnvironmentFactory`] as its `environment_factory`: the
    environment's reward is the only reward column. It adds what the instructor's runs need and GRPO does not know:
    query counts per role and episode totals in the logs, `queries.json` and our card next to the saved model, and
    both in every checkpoint (per rank) so that a resumed run keeps counting where it stopped. With a rewriter on an
    HTTP endpoint and `args.pipelined_tool_calls`, each iteration of TRL's tool loop sends the queries of all its
    completions at once ([`~instrl_trl.tool_environment.ToolCallPrefetcher`]); training is the same either way.

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
    _resumable_state_file = EXTRA_STATE_FILE

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
        use_prefetch = args.pipelined_tool_calls and endpoint_of(environment_factory.rewriter) is not None
        self.tool_call_prefetcher = ToolCallPrefetcher(environment_factory) if use_prefetch else None
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
        # Each completion is an episode whose tool calls query the servers
        roles = {"rewriter": environment_factory.rewriter, "reviewer": environment_factory.reviewer}
        warn_if_rollouts_leave_slots_idle(args, roles)

    @property
    def accounting(self):
        return self.instruction_environments.accounting

    @property
    def statistics(self) -> RunStatistics:
        """This process's episode totals (the environments record into it)."""
        return self.instruction_environments.statistics

    def run_totals(self) -> tuple[dict[str, dict[str, float]], RunStatistics]:
        """
        Usage per role and episode totals over all processes as of the last training step, or this process's own
        before any step.
        """
        if getattr(self, "_totals", None) is not None:
            return self._totals
        return local_usage(self.accounting), self.statistics

    def _tool_call_loop(self, prompts, prompt_ids, completion_ids, completions, logprobs, images, multimodal_fields):
        arguments = (prompts, prompt_ids, completion_ids, completions, logprobs, images, multimodal_fields)
        if self.tool_call_prefetcher is None:
            return super()._tool_call_loop(*arguments)
        # TRL changes `completions` in place as it goes: the prefetcher reads which completions wait for a tool call
        with self.tool_call_prefetcher.prefetching(self.environments, completions, self._sync_tool_dicts):
            return super()._tool_call_loop(*arguments)

    def training_step(self, model, inputs, num_items_in_batch=None):
        output = super().training_step(model, inputs, num_items_in_batch)
        # Reduced here, where every rank passes in step, not in `log()`, which may not run on all ranks alike
        self._totals = reduce_usage(self.accounting, self.accelerator), self.statistics.reduce(self.accelerator)
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
            settings = {
                "operations": self.instruction_environments.operations.names,
                "task_prompt": self.args.task_prompt,
                "max_operations": self.args.max_operations,
            }
            write_json_atomically(os.path.join(output_dir, INSTRUCTOR_FILE), settings)
            self._save_run_outputs(output_dir)

    def _build_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None):
        factory = self.instruction_environments
        per_role, statistics = self.run_totals()
        return build_operation_card(
            "instructor_card.md",
            "text-generation",
            model_name=self._card_name(model_name),
            operations=factory.operations,
            statistics=statistics,
            reward_weights=dict(zip(self.args.reward_funcs, factory.reward_weights.tolist(), strict=True)),
            tags=self._card_tags(tags),
            queries_total=sum(int(usage["queries"]) for usage in per_role.values()),
            usage_totals=per_role,
            name_or_path=self.accelerator.unwrap_model(self.model).config._name_or_path,
            hub_model_id=self.args.hub_model_id,
            dataset_name=dataset_name or self.args.dataset_name,
            stop_reward=factory.stop_reward,
            task_prompt=self.args.task_prompt,
        )

    # The resumable state per rank (`RunOutputsMixin`)
    def _resumable_state(self) -> dict:
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

    def _restore_resumable_state(self, state: dict) -> None:
        self.accounting.load_state_dict(state["accounting"])
        self.statistics.load_state_dict(state["statistics"])
        for index, func in enumerate(self.instruction_environments.reward_funcs):
            if str(index) in state["reward_states"]:
                func.load_state_dict(state["reward_states"][str(index)])

    def _usage_totals(self) -> dict[str, dict[str, float]]:
        return self.run_totals()[0]
