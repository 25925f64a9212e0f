"""
How the PPO trainer plays its rollouts with its policy: on the spot, lock-step or pipelined at a server
([`~InstructionGenerationTrainer.collect_rollout`]), or ahead, while PPO trains on an earlier rollout
(`rollouts_ahead`; the schedule and its guarantees are in `rollouts_ahead.py`).
"""

from copy import copy, deepcopy
from functools import partial

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..backends.accounting import QueryAccounting
from ..backends.role_calls import ServerPools
from ..environment import StepResult
from ..policy import ActFn, act, eval_mode
from .pipelined_rollout import collect_rollouts_pipelined, uses_endpoint
from .rollout import RolloutBatch, collect_rollouts, episode_generators
from .rollouts_ahead import Adoption, RolloutsAhead
from .sampling import NEXT_SEEDS_KEY


class RolloutPlayingMixin:
    r"""
    Mixed into [`InstructionGenerationTrainer`], before the Trainer in its bases. The trainer provides `args` (its
    [`InstructionGenerationConfig`]), `env` (the [`~instrl_trl.environment.InstructionEnv`]), `run_state`,
    `score_step(result)` (a step's rewards), `processing_class`, and `_rollouts_ahead`: a [`RolloutsAhead`] when
    `args.rollouts_ahead` > 0, else `None`; the Trainer itself its `accelerator`, `model`, `state`,
    `is_fsdp_enabled` and `is_deepspeed_enabled`.
    """

    _rollouts_ahead: RolloutsAhead | None
    # The tokenizer of the pipelined rollouts' scoring thread (a copy, made at the first such rollout)
    _scoring_tokenizer: PreTrainedTokenizerBase | None = None

    def policy_act_fn(self, greedy: bool = False) -> ActFn:
        """The current policy as an [`~instrl_trl.policy.ActFn`], sampling at `rollout_temperature`."""
        return partial(
            act,
            self.accelerator.unwrap_model(self.model),
            self.processing_class,
            max_length=self.args.max_state_length,
            greedy=greedy,
            generator=self.run_state.rollout_generator,
            temperature=self.args.rollout_temperature,
        )

    def collect_rollout(self, seeds: list[str]) -> RolloutBatch:
        """
        Plays one episode per seed with the current policy (sampling) and scores every step. When a role is an
        endpoint, each episode samples from its own stream, seeded by the run seed, the rank, the micro-step and its
        index, and the rollout is pipelined (`pipelined_rollouts`) or lock-step, the same rollout either way; with
        local roles only (the rules engine, transformers models), lock-step steps draw from the run's rollout stream.
        """
        model = self.accelerator.unwrap_model(self.model)
        act_fn = self._rollout_act_fn(model, self.processing_class)
        if not uses_endpoint(self.env):
            # Local roles: lock-step steps, each step's actions drawn together from the run's rollout stream
            with eval_mode(model):
                return collect_rollouts(self.env, act_fn, seeds, self.score_step, self.run_state.rollout_generator)
        rank = self.accelerator.process_index
        generators = episode_generators(self.args.seed, self.run_state.step, len(seeds), rank)
        with eval_mode(model):
            if not self.args.pipelined_rollouts:
                return collect_rollouts(self.env, act_fn, seeds, self.score_step, generators)
            # Complete steps are scored in a background thread while this one keeps the queries going; a fast
            # tokenizer is not thread-safe, so that thread tokenizes with a copy of its own
            if self._scoring_tokenizer is None:
                self._scoring_tokenizer = deepcopy(self.processing_class)
            scoring_act_fn = self._rollout_act_fn(model, self._scoring_tokenizer)
            return collect_rollouts_pipelined(
                self.env, act_fn, seeds, self.score_step, generators, scoring_act_fn=scoring_act_fn
            )

    def _rollout_act_fn(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> ActFn:
        """`model` as a rollout's policy (sampling at `rollout_temperature`), tokenizing with `tokenizer`."""
        return partial(
            act, model, tokenizer, max_length=self.args.max_state_length, temperature=self.args.rollout_temperature
        )

    # Rollouts played ahead (`rollouts_ahead`; the schedule is in `rollouts_ahead.py`)
    def _check_rollouts_ahead_supported(self) -> None:
        if not uses_endpoint(self.env):
            raise ValueError(
                f"`rollouts_ahead` is {self.args.rollouts_ahead}, which keeps an inference server busy between "
                "rollouts, but neither the rewriter nor the reviewer is an endpoint (the rules engine and local "
                "models play lock-step steps): set `rollouts_ahead: 0`, or point a role at a server "
                "(`backend: endpoint`)."
            )
        if self.is_fsdp_enabled or (
            self.is_deepspeed_enabled and self.accelerator.state.deepspeed_plugin.zero_stage == 3
        ):
            raise ValueError(
                "`rollouts_ahead` plays rollouts with full copies of the policy's weights, which FSDP and DeepSpeed "
                "ZeRO-3 shard across processes: use ZeRO-2 or DDP, or set `rollouts_ahead: 0`."
            )

    def _keep_rollouts_in_flight(self, generation_batch: list[dict]) -> None:
        """
        Keeps this rollout and the next `rollouts_ahead` ones in flight (see
        [`~instrl_trl.trainer.rollouts_ahead.RolloutsAhead.keep_in_flight`]), their seeds read from this micro-step's
        rows.
        """
        state, args = self.run_state, self.args
        steps_per_rollout = args.steps_per_generation * args.num_iterations
        this_step = state.step - state.step % steps_per_rollout
        seeds = {this_step: [row[args.instruction_column] for row in generation_batch]}
        for ahead in range(1, args.rollouts_ahead + 1):
            seeds[this_step + ahead * steps_per_rollout] = [row[NEXT_SEEDS_KEY][ahead - 1] for row in generation_batch]
        self._rollouts_ahead.keep_in_flight(
            state.step,
            seeds,
            at_boundary=state.step == this_step or state.buffer is None,
            last_step=self.state.max_steps * args.gradient_accumulation_steps,
            model=self.accelerator.unwrap_model(self.model),
            launch=self._launch_rollout_ahead,
        )

    def _launch_rollout_ahead(self, step: int, seeds: list[str], policy: PreTrainedModel) -> None:
        """
        Launches the rollout taken at micro-step `step`, played by `policy`. Its tokenizers are copied here, in the
        thread that owns the tokenizer (a fast tokenizer is not thread-safe).
        """
        act_fns = [self._rollout_act_fn(policy, deepcopy(self.processing_class)) for _ in range(2)]
        generators = episode_generators(self.args.seed, step, len(seeds), self.accelerator.process_index)
        play = partial(self._play_rollout_ahead, step, seeds, generators, *act_fns)
        self._rollouts_ahead.launch(step, policy, play)

    def _play_rollout_ahead(
        self,
        step: int,
        seeds: list[str],
        generators: list[torch.Generator],
        act_fn: ActFn,
        scoring_act_fn: ActFn,
        accounting: QueryAccounting,
        adoption: Adoption,
        pools: ServerPools,
    ) -> RolloutBatch:
        """
        A rollout played ahead (in a background thread): its own episodes and counts, its rewards once taken, its
        requests before those of later rollouts (its micro-step is their priority).
        """
        env = copy(self.env)
        env.accounting, env.episodes = accounting, []

        def reward_fn(result: StepResult):
            adoption.wait()
            return self.score_step(result)

        return collect_rollouts_pipelined(
            env, act_fn, seeds, reward_fn, generators, scoring_act_fn=scoring_act_fn, pools=pools, priority=step
        )
