"""
Pipelined rollouts: every episode advances as soon as its own rewrite and review return, so that a rollout keeps all
its episodes' queries in flight at a continuous-batching server (up to the server's `max_concurrency`), instead of
waiting, step after step, for the slowest query of the batch while stopped episodes leave their slots empty.

```
 ready episodes --act (micro-batched forward, each sampled from its own stream)--> rewriter --> eliminate --> reviewer
       ^                                                                                                      |
       +--------------------------- not done: ready again (in the order answers arrive) <--------------------+

 step t, once every episode took it or ended before it (while the servers work on later steps; in a background
 thread, given `scoring_act_fn`), in the lock-step order (step by step, episodes in order within a step):
   one forward over the step's states -> log-probabilities and values;  reward functions -> rewards
```

The rollout does not depend on the server's timing: episode `i` samples from its own stream (see
[`~instrl_trl.trainer.rollout.episode_generators`]), a rewrite's seed is its episode's, and what depends on batching
or order is computed once a step is complete, in the order the lock-step loop uses: the log-probabilities and values
(a forward pass over the same states as the lock-step step's, so bit for bit the same numbers) and the rewards (the
novelty reward remembers what it has seen, so the order of its calls matters). The actions themselves are sampled from
micro-batched forward passes: padding to another batch's longest state moves a probability by float rounding only, and
a draw that close to a boundary is settled by the state's own forward pass (see
[`~instrl_trl.policy.settled_actions`]), so the actions are the lock-step ones too.
"""

import queue
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from ..backends.base import Rewrite
from ..backends.role_calls import Completion, RoleCaller, ServerPools, dispatch_completions, endpoint_of
from ..environment import STOP_ACTION, Episode, InstructionEnv, StepResult, format_state
from .rollout import EpisodeActFn, RewardFn, RolloutBatch


# Most states in one policy forward pass while episodes wait: a smaller pass sends the first rewrites sooner
MAX_ACT_BATCH_SIZE = 32


def uses_endpoint(env: InstructionEnv) -> bool:
    """Whether the rewriter or the reviewer of `env` sends its queries to an HTTP endpoint."""
    return any(endpoint_of(role) is not None for role in (env.rewriter, env.reviewer))


@dataclass
class _EpisodeRun:
    """One episode on its way through the rollout, with what each of its steps did."""

    index: int
    episode: Episode
    generator: torch.Generator
    states: list[str] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    results: list[StepResult] = field(default_factory=list)
    operation: str | None = None
    rewrite: Rewrite | None = None


class _PipelinedEpisodes:
    """Plays the episodes of one rollout as their queries return (see the module's docstring)."""

    def __init__(
        self,
        env: InstructionEnv,
        act_fn: EpisodeActFn,
        reward_fn: RewardFn,
        max_batch_size: int,
        scoring_act_fn: EpisodeActFn | None = None,
    ):
        self.env = env
        self.act_fn = act_fn
        self.reward_fn = reward_fn
        self.max_batch_size = max_batch_size
        self.scoring_act_fn = scoring_act_fn

    def play(
        self,
        seeds: list[str],
        generators: list[torch.Generator],
        pools: ServerPools | None = None,
        priority: int | None = None,
    ) -> RolloutBatch:
        env = self.env
        env.reset(seeds)
        self._runs = [_EpisodeRun(index, episode, generators[index]) for index, episode in enumerate(env.episodes)]
        self._batch = RolloutBatch(num_episodes=len(seeds))
        self._num_scored = 0  # steps already in the batch
        self._completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        # Pools of its own, or pools shared with other rollouts in flight (which then own them and their loads)
        own_pools = pools is None
        if own_pools:
            pools = ServerPools({"rewriter": env.rewriter, "reviewer": env.reviewer})
        self._pools = pools
        self._client = pools.client if own_pools else None
        self._callers = {
            "rewriter": RoleCaller(
                "rewriter", env.rewriter.rewrite, self._completions, pools.pool_for(env.rewriter, priority)
            ),
            "reviewer": RoleCaller(
                "reviewer", self._review, self._completions, pools.pool_for(env.reviewer, priority)
            ),
        }
        self._to_act = list(self._runs)
        self._unfinished = len(self._runs)
        # Steps are scored in order by one background thread when the policy may be called from one; else here
        scorer = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout-scoring")
            if self.scoring_act_fn is not None
            else None
        )
        self._scoring: list[Future] = []
        try:
            while self._unfinished:
                while self._to_act:
                    ready, self._to_act = self._to_act[: self.max_batch_size], self._to_act[self.max_batch_size :]
                    self._act(ready)
                # A local role (the rules engine, a transformers model) answers what waits in one batch, here (every
                # caller flushes: no short-circuit)
                flushed = any([caller.flush() for caller in self._callers.values()])  # noqa: C419
                if not self._unfinished:
                    break
                if scorer is not None:
                    self._score_complete_steps(scorer)
                elif not flushed and self._completions.empty() and self._step_complete(self._num_scored):
                    # Nothing to send: score a step every episode is past, while the servers work
                    self._score_step(self.act_fn, *self._step_inputs())
                    continue
                self._handle_completions(block=not flushed)
            if own_pools:
                pools.client.stop()  # the last answer is in: what the client did while the servers could work
            if scorer is not None:
                self._score_complete_steps(scorer)
                for future in self._scoring:
                    future.result()
        finally:
            if own_pools:
                pools.shutdown()
            if scorer is not None:
                scorer.shutdown(wait=True, cancel_futures=True)
        while self._step_complete(self._num_scored):
            self._score_step(self.act_fn, *self._step_inputs())
        self._batch.evolutions = [list(episode.accepted) for episode in env.episodes]
        if own_pools:
            self._batch.server_loads, self._batch.client_load = pools.loads, pools.client
        return self._batch

    def _step_complete(self, step: int) -> bool:
        """Whether `step` has steps to score and no episode may still take it (each took it or ended before)."""
        takers = [run for run in self._runs if len(run.results) > step]
        return bool(takers) and all(len(run.results) > step or run.episode.done for run in self._runs)

    def _step_inputs(self) -> tuple[int, list[str], torch.Tensor, StepResult]:
        """The next complete step's states, actions and results, episodes in order (taken in the main thread)."""
        step = self._num_scored
        self._num_scored += 1
        stepping = [run for run in self._runs if len(run.results) > step]
        result = StepResult.concatenate(
            [run.results[step] for run in stepping], episode_indices=[run.index for run in stepping]
        )
        actions = torch.tensor([run.actions[step] for run in stepping])
        return step, [run.states[step] for run in stepping], actions, result

    def _score_step(
        self, act_fn: EpisodeActFn, step: int, states: list[str], taken: torch.Tensor, result: StepResult
    ) -> None:
        """
        Adds a step to the batch as the lock-step loop would: its log-probabilities and values from one forward over
        the step's states, episodes in order, then its rewards. Steps must come in order.
        """
        actions, logprobs, values = act_fn(states, actions=taken)
        rewards, components = self.reward_fn(result)
        self._batch.add(states, step, result, actions, logprobs, values, rewards, components)

    def _score_complete_steps(self, scorer: ThreadPoolExecutor) -> None:
        """Hands every step all episodes are past to the scoring thread; raises what an earlier scoring raised."""
        for future in self._scoring:
            if future.done() and future.exception() is not None:
                raise future.exception()
        while self._step_complete(self._num_scored):
            self._scoring.append(scorer.submit(self._score_step, self.scoring_act_fn, *self._step_inputs()))

    def _review(self, pairs: list[tuple[str, str]]):
        return self.env.reviewer.review([original for original, _ in pairs], [new for _, new in pairs])

    def _act(self, runs: list[_EpisodeRun]) -> None:
        states = [format_state(run.episode.instruction, run.episode.history) for run in runs]
        actions, _, _ = self.act_fn(states, generator=[run.generator for run in runs])
        for run, state, action in zip(runs, states, actions.tolist(), strict=True):
            run.states.append(state)
            run.actions.append(action)
            run.operation = self.env.action_names[action]
            if run.operation == STOP_ACTION:
                self._end_step(run, self.env.apply_step(run.episode, STOP_ACTION))
            else:
                self._callers["rewriter"].submit(self.env.rewrite_request(run.episode, run.operation), run)

    def _handle_completions(self, block: bool) -> None:
        dispatch_completions(self._completions, self._on_completion, block, self._client)

    def _on_completion(self, completion: Completion) -> None:
        if completion.role == "rewriter":
            self._on_rewrite(completion.tag, completion.result)
        else:
            self._on_review(completion.tag, completion.result)

    def _on_rewrite(self, run: _EpisodeRun, rewrite: Rewrite) -> None:
        self.env.accounting.record("rewriter", 1, [rewrite.usage])
        run.rewrite = rewrite
        # Eliminated rewrites are dropped by rule; only the others cost a reviewer query, as in `InstructionEnv.step`
        elimination = self.env.elimination(run.episode, rewrite)
        if elimination is None:
            self._callers["reviewer"].submit((run.episode.instruction, rewrite.instruction), run)
        else:
            self._end_step(run, self.env.apply_step(run.episode, run.operation, rewrite, elimination))

    def _on_review(self, run: _EpisodeRun, review) -> None:
        self.env.accounting.record("reviewer", 1, [review.usage])
        self._end_step(run, self.env.apply_step(run.episode, run.operation, run.rewrite, None, review))

    def _end_step(self, run: _EpisodeRun, result: StepResult) -> None:
        run.results.append(result)
        run.rewrite = None
        if run.episode.done:
            self._unfinished -= 1
        else:
            self._to_act.append(run)


def collect_rollouts_pipelined(
    env: InstructionEnv,
    act_fn: EpisodeActFn,
    seeds: list[str],
    reward_fn: RewardFn,
    generators: list[torch.Generator],
    max_batch_size: int = MAX_ACT_BATCH_SIZE,
    scoring_act_fn: EpisodeActFn | None = None,
    pools: ServerPools | None = None,
    priority: int | None = None,
) -> RolloutBatch:
    """
    Plays one episode per seed until all have ended, each advancing as soon as its own queries return, and returns
    every transition: the [`~instrl_trl.trainer.rollout.RolloutBatch`] that
    [`~instrl_trl.trainer.rollout.collect_rollouts`] returns for the same arguments, whatever the server's timing.

    Args:
        env ([`~instrl_trl.environment.InstructionEnv`]):
            The environment; its rewriter and reviewer are called item by item, from one thread pool per server
            (bounded by the server's `max_concurrency`) for an endpoint, in batches in this thread otherwise.
        act_fn ([`~instrl_trl.trainer.rollout.EpisodeActFn`]):
            The policy.
        seeds (`list[str]`):
            One seed instruction per episode.
        reward_fn (`RewardFn`):
            Scores one step of the batch (a [`~instrl_trl.environment.StepResult`] over the episodes that took it).
        generators (`list[torch.Generator]`):
            Episode `i` samples its actions from `generators[i]`.
        max_batch_size (`int`, *optional*, defaults to `32`):
            Most states in one forward pass while episodes wait for the policy.
        scoring_act_fn ([`~instrl_trl.trainer.rollout.EpisodeActFn`], *optional*):
            The same policy, called from a background thread that scores the complete steps (their forward pass and
            rewards, the reward functions called from there too) while this thread keeps the queries going: it may
            share the model with `act_fn` but nothing that is not thread-safe (a fast tokenizer is not: give it a
            copy). Without it, steps are scored here, between answers.
        pools ([`~instrl_trl.backends.role_calls.ServerPools`], *optional*):
            Server pools shared with other rollouts in flight at the same time, which bound the requests of all of them
            together (each server's `max_concurrency`); the caller shuts them down, and the batch reports no loads of
            its own (`server_loads` empty, `client_load` `None`). By default the rollout makes pools of its own.
        priority (`int`, *optional*):
            With prioritized shared `pools`, the priority of this rollout's requests: a lower one's go first.
    """
    if len(generators) != len(seeds):
        raise ValueError(f"Got {len(generators)} generators for {len(seeds)} seeds; pass one per episode.")
    if max_batch_size < 1:
        raise ValueError(f"`max_batch_size` must be at least 1, got {max_batch_size}.")
    episodes = _PipelinedEpisodes(env, act_fn, reward_fn, max_batch_size, scoring_act_fn)
    return episodes.play(seeds, generators, pools, priority)
