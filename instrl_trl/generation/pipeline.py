"""
Pipelined generation: every seed's episode advances as soon as its own last query returns, its kept instructions go
to the expert as soon as it ends, and new episodes start as others finish, so that a continuous-batching server is
kept busy instead of waiting, round after round, for the slowest request of a lock-step batch.

```
 seeds in order ---> [ window of running episodes ] ---> expert ---> reorder buffer ---> dedup ---> shards
                      act (one batched forward)            (answers,     commits the longest finished
                      rewrite -> eliminate -> review       verification) prefix of seeds, in seed order
```

The rows do not depend on the server's timing: an episode samples its operations from its own stream (seeded by the
run seed and its seed index), a rewrite's seed is its episode's, the expert's n-th answer to an instruction is asked
with seed n, and near-duplicates are decided when seeds are committed, in seed order. Only committed seeds reach the
shards and the progress markers, so a killed run resumes as the sequential stage does.
"""

import logging
import queue
from dataclasses import dataclass, field
from typing import Any

import torch

from ..backends.base import Expert
from ..backends.failure_budget import FailureBudget
from ..backends.role_calls import BatchingWorker, Completion, RoleCaller, ServerPools, dispatch_completions
from ..backends.server_load import BUSY_CORES, ClientLoad, ServerLoad, waiting_messages
from ..environment import STOP_ACTION, Episode, StepResult, format_state
from .evolve import Candidate, episode_candidates
from .filters import Deduplicator
from .policies import ActPolicy, EvolutionSetup
from .responses import AnsweredCandidate, ExpertUnavailableError, verified_by_constraints
from .rows import to_row
from .shards import ShardWriter


# Running episodes per request slot of the servers: while one episode waits on its policy step or the expert, another
# has a request queued, so the servers never wait on this process
EPISODES_PER_SLOT = 2
# How far past the oldest unfinished seed new episodes may start (in windows): bounds the reorder buffer when one
# seed is slow (retries, a long tail of latencies)
MAX_WINDOWS_AHEAD = 4

logger = logging.getLogger(__name__)


@dataclass
class _SeedWork:
    """One seed on its way through the pipeline."""

    index: int
    episode: Episode
    actor: Any
    operation: str | None = None
    rewrite: Any = None
    returns: float = 0.0
    returns_at_acceptance: list[float] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    answers: dict[int, AnsweredCandidate | None] = field(default_factory=dict)
    embeddings: dict[int, Any] = field(default_factory=dict)
    pending_answers: int = 0
    pending_embeddings: int = 0
    failed: bool = False
    finished: bool = False


@dataclass
class PipelineResult:
    r"""
    What [`PipelinedGeneration.run`] did.

    Parameters:
        num_rows (`int`): rows written.
        failed_seed_indices (`set[int]`): seeds left undone because some of their queries failed.
        server_loads (`dict[str, ServerLoad]`): per endpoint, how many requests were in flight over the run.
        client_load (`ClientLoad` or `None`): the process's CPU and the loop's waiting over the run.
    """

    num_rows: int = 0
    failed_seed_indices: set[int] = field(default_factory=set)
    server_loads: dict[str, ServerLoad] = field(default_factory=dict)
    client_load: ClientLoad | None = None


def server_waiting_messages(loads: dict[str, ServerLoad], client: ClientLoad) -> list[str]:
    """
    One message per server the run kept waiting, with its cause (see
    [`~instrl_trl.backends.server_load.waiting_messages`]): this process (they were free while its loop worked) or a
    lack of work to send (free while the loop waited for answers).
    """
    cores_full = client.cores_busy >= BUSY_CORES * client.cores
    return waiting_messages(
        loads,
        client,
        who="Generation",
        held_back_cause=(
            "the policy's or the near-duplicate filter's forward passes on a CPU (`dedup_method: embedding` costs "
            "~100x `minhash`; a GPU, or fewer CPU jobs beside the run, speed them up), or a role answered in this "
            "process (a local `transformers` model answers its batches while the server waits)."
        ),
        no_work_cause=(
            "there were fewer seeds than twice `max_concurrency` (a run's first and last episodes leave slots empty)"
            + (
                ", or finished seeds waited for the near-duplicate filter's embeddings, computed beside the loop on "
                "cores that were full (a GPU, or `dedup_method: minhash`, frees them)."
                if cores_full
                else "."
            )
        ),
    )


class PipelinedGeneration:
    r"""
    Plays the episodes of many seeds at once and writes their rows in seed order (see the module's docstring).

    Args:
        policy ([`~instrl_trl.generation.policies.ActPolicy`]):
            Picks one operation per state (the PPO operation policy or a baseline).
        setup ([`~instrl_trl.generation.policies.EvolutionSetup`]):
            The rewriter, reviewer, accounting, rewards and episode settings.
        expert ([`~instrl_trl.backends.base.Expert`]):
            Answers the kept instructions.
        deduplicator ([`~instrl_trl.generation.filters.Deduplicator`]):
            Drops duplicates of rows already committed (it remembers the rows on disk).
        writer ([`~instrl_trl.generation.shards.ShardWriter`]):
            Where committed rows and done markers go.
        budget ([`~instrl_trl.backends.failure_budget.FailureBudget`]):
            Checked each time `batch_size` more seeds are committed.
        batch_size (`int`):
            The fewest episodes running at once (more when the servers have more slots), and the most states in one
            policy forward pass when nothing waits on a server.
        verification_retries (`int`), keep_unverified (`bool`):
            As in [`~instrl_trl.generation.responses.answer_and_verify`].
    """

    def __init__(
        self,
        policy: ActPolicy,
        setup: EvolutionSetup,
        expert: Expert,
        deduplicator: Deduplicator,
        writer: ShardWriter,
        budget: FailureBudget,
        batch_size: int,
        verification_retries: int = 1,
        keep_unverified: bool = False,
    ):
        self.policy = policy
        self.setup = setup
        self.env = setup.environment(policy.operations)
        self.expert = expert
        self.deduplicator = deduplicator
        self.writer = writer
        self.budget = budget
        self.batch_size = batch_size
        self.verification_retries = verification_retries
        self.keep_unverified = keep_unverified

    def run(self, todo: list[int], instructions: list[str], on_committed=None) -> PipelineResult:
        """
        Generates the rows of the seeds `todo` (indices into `instructions`, in order) and commits them in that order;
        `on_committed(num_seeds)` is called after each commit (progress bars).
        """
        self._result = PipelineResult()
        self._completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        roles = {"rewriter": self.setup.rewriter, "reviewer": self.setup.reviewer, "expert": self.expert}
        pools = self._pools = ServerPools(roles)
        respond = getattr(self.expert, "respond_attempts", None)
        self._callers = {
            "rewriter": RoleCaller("rewriter", self.setup.rewriter.rewrite, self._completions,
                                   pools.pool_for(self.setup.rewriter)),
            "reviewer": RoleCaller("reviewer", self._review, self._completions, pools.pool_for(self.setup.reviewer)),
            "expert": RoleCaller("expert", (lambda items: respond([i for i, _ in items], [a for _, a in items]))
                                 if respond else (lambda items: self.expert.respond([i for i, _ in items])),
                                 self._completions, pools.pool_for(self.expert)),
        }  # fmt: skip
        if self.deduplicator.uses_embeddings:
            embedder = self.deduplicator.embedder  # loaded here, not in the worker's thread
            self._callers["embedder"] = BatchingWorker("embedder", lambda texts: list(embedder.encode(texts)),
                                                       self._completions)  # fmt: skip
        window = max(self.batch_size, EPISODES_PER_SLOT * pools.total_concurrency)
        self._to_act: list[_SeedWork] = []
        self._unfinished = 0
        self._expert_failures_in_a_row = 0
        works: dict[int, _SeedWork] = {}  # position in `todo` -> work, until committed
        next_position = commit_position = seeds_since_check = 0
        self.budget.start_batch()
        try:
            while commit_position < len(todo):
                while (
                    self._unfinished < window
                    and next_position < len(todo)
                    and next_position - commit_position < MAX_WINDOWS_AHEAD * window
                ):
                    works[next_position] = self._start(todo[next_position], instructions[todo[next_position]])
                    next_position += 1
                while self._to_act:
                    ready, self._to_act = self._to_act[: self.batch_size], self._to_act[self.batch_size :]
                    self._act(ready)
                # Local roles answer in batches here, while the servers work on what is in flight
                flushed = [caller.flush() for caller in self._callers.values()]
                outstanding = self._unfinished > 0 or any(work.pending_embeddings for work in works.values())
                self._handle_completions(block=not any(flushed) and not self._to_act and outstanding)

                committed = []
                while (
                    commit_position < next_position
                    and works[commit_position].finished
                    and not works[commit_position].pending_embeddings
                ):
                    committed.append(works.pop(commit_position))
                    commit_position += 1
                if committed:
                    self._commit(committed)
                    seeds_since_check += len(committed)
                    if on_committed is not None:
                        on_committed(len(committed))
                    if seeds_since_check >= self.batch_size or commit_position == len(todo):
                        self.budget.check_batch()
                        self.budget.start_batch()
                        seeds_since_check = 0
        finally:
            pools.shutdown()
            if "embedder" in self._callers:
                self._callers["embedder"].close()
        self._result.server_loads, self._result.client_load = pools.loads, pools.client
        for message in server_waiting_messages(pools.loads, pools.client):
            logger.warning(message)
        return self._result

    def _review(self, pairs: list[tuple[str, str]]):
        return self.setup.reviewer.review([original for original, _ in pairs], [new for _, new in pairs])

    def _start(self, seed_index: int, instruction: str) -> _SeedWork:
        work = _SeedWork(seed_index, Episode(seed=instruction, instruction=instruction),
                         self.policy.episode_actor(self.setup, seed_index))  # fmt: skip
        self._unfinished += 1
        self._to_act.append(work)
        return work

    def _act(self, works: list[_SeedWork]) -> None:
        states = [format_state(work.episode.instruction, work.episode.history) for work in works]
        actions = self.policy.act_episodes(self.setup, states, [work.actor for work in works])
        for work, action in zip(works, actions, strict=True):
            work.operation = self.env.action_names[action]
            if work.operation == STOP_ACTION:
                self._end_step(work, self.env.apply_step(work.episode, STOP_ACTION))
            else:
                self._callers["rewriter"].submit(self.env.rewrite_request(work.episode, work.operation), work)

    def _handle_completions(self, block: bool) -> None:
        dispatch_completions(
            self._completions,
            lambda completion: getattr(self, f"_on_{completion.role}")(completion.tag, completion.result),
            block,
            self._pools.client,
        )

    def _on_rewriter(self, work: _SeedWork, rewrite) -> None:
        self.setup.accounting.record("rewriter", 1, [rewrite.usage])
        work.rewrite = rewrite
        elimination = self.env.elimination(work.episode, rewrite)
        if elimination is None:
            self._callers["reviewer"].submit((work.episode.instruction, rewrite.instruction), work)
        else:
            self._end_step(work, self.env.apply_step(work.episode, work.operation, rewrite, elimination))

    def _on_reviewer(self, work: _SeedWork, review) -> None:
        self.setup.accounting.record("reviewer", 1, [review.usage])
        self._end_step(work, self.env.apply_step(work.episode, work.operation, work.rewrite, None, review))

    def _end_step(self, work: _SeedWork, step: StepResult) -> None:
        work.returns += float(self.setup.score(step)[0])
        if step.accepted[0]:
            work.returns_at_acceptance.append(work.returns)
        episode = work.episode
        if not episode.done:
            self._to_act.append(work)
            return
        if episode.failed_queries:  # not done: the next run plays it again, so its expert queries would be wasted
            work.failed = True
            return self._finish(work)
        work.candidates = episode_candidates(episode.seed, work.index, episode.accepted, work.returns_at_acceptance,
                                             self.setup.keep_intermediate)  # fmt: skip
        for position, candidate in enumerate(work.candidates):
            if self.deduplicator.is_known(candidate.instruction):
                work.answers[position] = None  # an exact duplicate of a committed row: the commit would drop it
                continue
            work.pending_answers += 1
            self._callers["expert"].submit((candidate.instruction, 0), (work, position, 0))
            if "embedder" in self._callers:  # for the near-duplicate check at commit, while the expert answers
                work.pending_embeddings += 1
                self._callers["embedder"].submit(candidate.instruction, (work, position))
        if not work.pending_answers:
            self._finish(work)

    def _on_expert(self, tag: tuple[_SeedWork, int, int], answer) -> None:
        work, position, attempt = tag
        self.setup.accounting.record("expert", 1, [answer.usage])
        candidate = work.candidates[position]
        if not answer.text.strip():
            work.failed = True
            work.answers[position] = None
            if attempt == 0:
                self._expert_failures_in_a_row += 1
                if self._expert_failures_in_a_row >= self.batch_size:
                    raise ExpertUnavailableError(
                        f"The expert ({getattr(self.expert, 'model_name', type(self.expert).__name__)}) returned no "
                        f"usable answer for {self._expert_failures_in_a_row} instructions in a row; check that its "
                        "endpoint is reachable."
                    )
        else:
            self._expert_failures_in_a_row = 0
            verified = verified_by_constraints(candidate, answer.text)
            if verified is False and attempt < self.verification_retries:
                self._callers["expert"].submit((candidate.instruction, attempt + 1), (work, position, attempt + 1))
                return
            work.answers[position] = AnsweredCandidate(candidate, answer.text, verified, attempt + 1)
        self._answered(work)

    def _on_embedder(self, tag: tuple[_SeedWork, int], embedding) -> None:
        work, position = tag
        work.embeddings[position] = embedding
        work.pending_embeddings -= 1

    def _answered(self, work: _SeedWork) -> None:
        work.pending_answers -= 1
        if not work.pending_answers:
            self._finish(work)

    def _finish(self, work: _SeedWork) -> None:
        # Its queries are done: a new episode takes its place in the window, while its embeddings may still be on
        # their way (the commit waits for them; `MAX_WINDOWS_AHEAD` bounds how far new episodes run ahead)
        work.finished = True
        self._unfinished -= 1

    def _commit(self, works: list[_SeedWork]) -> None:
        """Deduplicates and writes the rows of finished seeds, in seed order, one seed at a time."""
        for work in works:
            if work.failed:
                self._result.failed_seed_indices.add(work.index)
                continue
            positions = [
                position
                for position, item in sorted(work.answers.items())
                if item is not None and (item.verified is not False or self.keep_unverified)
            ]
            answered = [work.answers[position] for position in positions]
            embeddings = (
                torch.stack([work.embeddings[p] for p in positions]) if work.embeddings and positions else None
            )
            kept = self.deduplicator.filter([item.candidate for item in answered], embeddings)
            fresh = {id(candidate) for candidate in kept}
            rows = [to_row(item) for item in answered if id(item.candidate) in fresh]
            self.writer.add(rows, [work.index])
            self._result.num_rows += len(rows)
