"""Using the policy being trained: acting, measuring its query efficiency, building a dataset with it."""

from functools import partial

import torch
from datasets import Dataset

from ..backends.base import Expert
from ..environment import InstructionEnv
from ..policy import act
from .rollout import QueryEfficiency, measure_query_efficiency, uniform_act_fn


class PolicyUsageMixin:
    """Methods of [`InstructionGenerationTrainer`] that use the policy outside the PPO loop."""

    def policy_act_fn(self, greedy: bool = False):
        """The current policy as an `act_fn(states) -> (actions, logprobs, values)` for the rollout functions."""
        model = self.accelerator.unwrap_model(self.model)
        return partial(
            act,
            model,
            self.processing_class,
            max_length=self.args.max_state_length,
            greedy=greedy,
            generator=self._rollout_generator,
            temperature=self.args.rollout_temperature,
        )

    def evaluate_query_efficiency(
        self,
        seeds: list[str],
        query_budget: int,
        policy: str = "trained",
        greedy: bool = True,
        batch_size: int = 32,
        end_on_elimination: bool | None = None,
    ) -> QueryEfficiency:
        """
        Spends `query_budget` queries on `seeds` with the trained policy (`policy="trained"`) or with the Evol-Instruct
        baseline (`policy="uniform"`: `max_operations` rounds of uniformly random operations, where a failed
        evolution is dropped and the instruction stays in the pool), on a separate environment with its own query
        count, and reports queries per accepted instruction. Training state (query counts, novelty memory) is
        untouched. `end_on_elimination` overrides the environment's rule (by default: the trained policy's episodes
        end on elimination, as in training; the baseline's do not, as in Evol-Instruct).
        """
        if policy not in ("trained", "uniform"):
            raise ValueError(f"`policy` must be 'trained' or 'uniform', got {policy!r}.")
        env = InstructionEnv(
            self.operations,
            self.env.rewriter,
            self.env.reviewer,
            self.args.max_operations,
            seed=self.args.seed,
            end_on_elimination=policy == "trained" if end_on_elimination is None else end_on_elimination,
        )
        if policy == "uniform":
            act_fn = uniform_act_fn(len(self.action_names), torch.Generator().manual_seed(self.args.seed))
        else:
            act_fn = self.policy_act_fn(greedy=greedy)
        reward_states = [func.state_dict() if hasattr(func, "state_dict") else None for func in self.reward_funcs]
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        try:
            return measure_query_efficiency(env, act_fn, seeds, self.score_step, query_budget, batch_size)
        finally:
            model.train(was_training)
            for func, state in zip(self.reward_funcs, reward_states, strict=True):
                if state is not None:
                    func.load_state_dict(state)

    def generate_dataset(self, seeds: Dataset, output_dir: str, expert: Expert | None = None, **config_kwargs):
        """
        Builds the instruction dataset from `seeds` with the policy as trained so far, this trainer's operations,
        rewriter and reviewer, and `expert` (the rules expert by default); `config_kwargs` go to
        [`~instrl_trl.generation.DatasetGenerationConfig`]. Returns its [`~instrl_trl.generation.GenerationSummary`].
        """
        # The generation stage sits above the trainer in the layers, so it is imported here, on use only
        from ..generation import DatasetGenerationConfig, generate_dataset

        config = DatasetGenerationConfig(
            policy=self.args.hub_model_id or self.args.output_dir,
            output_dir=output_dir,
            instruction_column=self.args.instruction_column,
            max_operations=self.args.max_operations,
            seed=self.args.seed,
            **config_kwargs,
        )
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        try:
            return generate_dataset(
                config,
                seeds,
                policy=model,
                processing_class=self.processing_class,
                operations=self.operations,
                rewriter=self.env.rewriter,
                reviewer=self.env.reviewer,
                expert=expert,
            )
        finally:
            model.train(was_training)
