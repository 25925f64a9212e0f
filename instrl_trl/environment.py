"""
`InstructionEnv`: batched episodes over textual operations.

The state of an episode is the current instruction plus the names of the operations already applied. An action is
an operation name (or `stop`). A step sends one rewrite request per running episode to the rewriter, applies
Evol-Instruct's elimination rules to the result, and asks the reviewer whether it adds information. A rewrite that
adds nothing is discarded (the instruction stays as it was, the operation is still recorded in the history); an
eliminated rewrite ends its episode. The environment knows nothing of rewards, policies or trainers, so the same
class can back another trainer later.
"""

import zlib
from dataclasses import dataclass, field, fields, replace

from .backends.accounting import QueryAccounting
from .backends.base import Review, Reviewer, Rewrite, Rewriter, RewriteRequest
from .constraints import Constraint
from .elimination import elimination_reason
from .operations.operation import STOP_ACTION, OperationLibrary


@dataclass(frozen=True)
class Evolution:
    r"""
    One accepted evolved instruction, with how it was made.

    Parameters:
        instruction (`str`): the evolved instruction.
        operations (`tuple[str, ...]`): every operation applied to the seed up to this one (including those that
            added nothing).
        evolutions (`int`): how many accepted evolutions of the episode made this instruction (1 for the first
            accepted one); at most `len(operations)`, the operations tried.
        constraints (`tuple[Constraint, ...]`): the verifiable constraints it carries.
        review_probability (`float` or `None`): the reviewer's P(information gain) for the step that made it
            (`None` when the reviewer gives no probability, as the rules engine).
    """

    instruction: str
    operations: tuple[str, ...]
    evolutions: int
    constraints: tuple[Constraint, ...] = ()
    review_probability: float | None = None


@dataclass
class Episode:
    r"""
    The running state of one episode.

    Parameters:
        seed (`str`):
            The seed instruction the episode started from.
        instruction (`str`):
            The current instruction.
        history (`list[str]`):
            Operation names applied so far, oldest first (including those that added nothing).
        constraints (`tuple[Constraint, ...]`):
            Verifiable constraints carried by the current instruction.
        accepted (`list[Evolution]`):
            Every evolved instruction the episode produced that passed the reviewer and the elimination rules.
        done (`bool`):
            Whether the episode has ended.
        end_reason (`str` or `None`):
            `"stop"`, `"max_operations"` or `"elimination:<reason>"` once done.
        failed_queries (`int`):
            Rewrites and reviews of the episode that got no answer from their backend (after its retries): its
            outcome says nothing about the policy's choices, and a stage does not count the episode as done.
    """

    seed: str
    instruction: str
    history: list[str] = field(default_factory=list)
    constraints: tuple[Constraint, ...] = ()
    accepted: list[Evolution] = field(default_factory=list)
    done: bool = False
    end_reason: str | None = None
    failed_queries: int = 0

    def copy(self) -> "Episode":
        """
        An independent copy to continue along another branch (see [`InstructionEnv.resume`]): its lists are copied,
        its evolutions and constraints (immutable) are shared.
        """
        return replace(self, history=list(self.history), accepted=list(self.accepted))


@dataclass
class StepResult:
    r"""
    What one `step` did, one entry per episode that was running before the step (in episode order).

    Parameters:
        episode_indices (`list[int]`): index of each episode in the batch.
        operation (`list[str]`): the action taken.
        instructions (`list[str]`): the instruction before the step.
        new_instructions (`list[str]`): the rewriter's output (the old instruction for `stop`).
        information_gain (`list[bool]`): the reviewer's verdict (`False` when not reviewed).
        gain_probability (`list[float | None]`): the reviewer's P(information gain) (`None` when not reviewed, when
            the review failed, or for a reviewer that gives no probability).
        review_failed (`list[bool]`): the review was asked but gave no verdict (a failed or unparseable query).
        cleanups (`list[tuple[str, ...]]`): what was cut from the rewriter's answer (see `clean_rewrite`).
        elimination (`list[str | None]`): the elimination reason, if any.
        accepted (`list[bool]`): information gain, not eliminated and not `stop`.
        queries (`list[int]`): LLM queries spent on this step (rewriter + reviewer).
        done (`list[bool]`): whether the episode ended at this step.
    """

    episode_indices: list[int]
    operation: list[str]
    instructions: list[str]
    new_instructions: list[str]
    information_gain: list[bool]
    elimination: list[str | None]
    accepted: list[bool]
    queries: list[int]
    done: list[bool]
    gain_probability: list[float | None] = field(default_factory=list)
    review_failed: list[bool] = field(default_factory=list)
    cleanups: list[tuple[str, ...]] = field(default_factory=list)

    def reward_kwargs(self) -> dict[str, list]:
        """Episode fields passed to the reward functions as keyword arguments."""
        return {
            "operation": self.operation,
            "information_gain": self.information_gain,
            "elimination": self.elimination,
            "accepted": self.accepted,
            "queries": self.queries,
        }

    @classmethod
    def concatenate(cls, results: list["StepResult"], episode_indices: list[int] | None = None) -> "StepResult":
        """
        The entries of `results`, one after the other, as one [`StepResult`] (for batched reward functions);
        `episode_indices` replaces theirs when given.
        """
        merged = cls(
            **{f.name: [value for result in results for value in getattr(result, f.name)] for f in fields(cls)}
        )
        if episode_indices is not None:
            merged.episode_indices = list(episode_indices)
        return merged


def format_state(instruction: str, history: list[str] | tuple[str, ...]) -> str:
    """
    The text the policy reads: the operations applied so far, the instruction's length, then the instruction.

    Example:
    ```python
    >>> format_state("Name three rivers.", ["deepening"])
    'operations: deepening | words: 3 | Name three rivers.'
    ```
    """
    operations = ", ".join(history) if history else "none"
    return f"operations: {operations} | words: {len(instruction.split())} | {instruction}"


class InstructionEnv:
    r"""
    Batched operation episodes.

    Args:
        operations ([`OperationLibrary`]):
            The operations the policy may choose; the action space is `operations.names + ["stop"]`.
        rewriter ([`Rewriter`]):
            Applies operations.
        reviewer ([`Reviewer`]):
            Judges information gain.
        max_operations (`int`, *optional*, defaults to `6`):
            Number of operations after which an episode ends (the paper's episode length).
        accounting ([`QueryAccounting`] or `None`, *optional*):
            Where queries are counted; a new one by default.
        seed (`int`, *optional*, defaults to `0`):
            Run seed mixed into every rewrite's seed, so that the same seeds and run seed give the same episodes.
        end_on_elimination (`bool`, *optional*, defaults to `True`):
            Whether an eliminated rewrite ends its episode. `False` reproduces Evol-Instruct's procedure, where a
            failed evolution is dropped and the instruction goes back to the pool for the next round.
    """

    def __init__(
        self,
        operations: OperationLibrary,
        rewriter: Rewriter,
        reviewer: Reviewer,
        max_operations: int = 6,
        accounting: QueryAccounting | None = None,
        seed: int = 0,
        end_on_elimination: bool = True,
    ):
        if max_operations < 1:
            raise ValueError(f"`max_operations` must be at least 1, got {max_operations}.")
        rewriter.check_operations(operations)  # e.g. the rules engine refuses operations it cannot apply
        self.operations = operations
        self.rewriter = rewriter
        self.reviewer = reviewer
        self.max_operations = max_operations
        self.accounting = accounting if accounting is not None else QueryAccounting()
        self.seed = seed
        self.end_on_elimination = end_on_elimination
        self.action_names = [*operations.names, STOP_ACTION]
        self.episodes: list[Episode] = []

    def reset(self, seeds: list[str]) -> list[str]:
        """Starts one episode per seed instruction and returns their states."""
        self.episodes = [Episode(seed=seed, instruction=seed) for seed in seeds]
        return self.states()

    def resume(self, episodes: list[Episode]) -> list[str]:
        """
        Continues `episodes` (for example [`Episode.copy`]s of another batch's, as a search over operation sequences
        does) in place of the current ones, and returns their states. Steps change these objects.
        """
        self.episodes = list(episodes)
        return self.states()

    @property
    def running(self) -> list[int]:
        """Indices of the episodes that have not ended."""
        return [index for index, episode in enumerate(self.episodes) if not episode.done]

    @property
    def all_done(self) -> bool:
        return all(episode.done for episode in self.episodes)

    def states(self) -> list[str]:
        """Policy states of the running episodes, in episode order."""
        return [format_state(self.episodes[i].instruction, self.episodes[i].history) for i in self.running]

    def _rewrite_seed(self, episode: Episode) -> int:
        # crc32, not hash(): Python salts str hashes per process, and rewrites must be reproducible across runs
        return zlib.crc32(f"{self.seed}:{episode.seed}".encode())

    def step(self, actions: list[int | str]) -> StepResult:
        """
        Applies one action per running episode (in the order of `running`) and returns what happened.
        """
        running = self.running
        if len(actions) != len(running):
            raise ValueError(f"`actions` has {len(actions)} entries but {len(running)} episodes are running.")
        out_of_range = [a for a in actions if isinstance(a, int) and not 0 <= a < len(self.action_names)]
        if out_of_range:
            raise ValueError(
                f"Action ids {out_of_range} are out of range: there are {len(self.action_names)} actions "
                f"({', '.join(self.action_names)})."
            )
        names = [self.action_names[a] if isinstance(a, int) else a for a in actions]
        unknown = [name for name in names if name not in self.action_names]
        if unknown:
            raise ValueError(f"Unknown actions {unknown}. Valid actions: {', '.join(self.action_names)}.")

        episodes = [self.episodes[i] for i in running]
        to_rewrite = [k for k, name in enumerate(names) if name != STOP_ACTION]
        requests = [self.rewrite_request(episodes[k], names[k]) for k in to_rewrite]
        rewrites = dict(zip(to_rewrite, self.rewriter.rewrite(requests) if requests else [], strict=True))
        self.accounting.record("rewriter", len(requests), [rewrite.usage for rewrite in rewrites.values()])
        eliminations = {k: self.elimination(episodes[k], rewrite) for k, rewrite in rewrites.items()}

        # Eliminated rewrites are dropped by rule; only the others cost a reviewer query
        to_review = [k for k in to_rewrite if eliminations[k] is None]
        reviews = (
            self.reviewer.review(
                [episodes[k].instruction for k in to_review], [rewrites[k].instruction for k in to_review]
            )
            if to_review
            else []
        )
        self.accounting.record("reviewer", len(to_review), [review.usage for review in reviews])
        reviews = dict(zip(to_review, reviews, strict=True))
        steps = [
            self.apply_step(episodes[k], names[k], rewrites.get(k), eliminations.get(k), reviews.get(k))
            for k in range(len(episodes))
        ]
        return StepResult.concatenate(steps, episode_indices=running)

    def rewrite_request(self, episode: Episode, operation: str) -> RewriteRequest:
        """The request that applies `operation` (a name) to `episode`'s current instruction."""
        return RewriteRequest(
            instruction=episode.instruction,
            operation=self.operations[operation],
            history=tuple(episode.history),
            constraints=episode.constraints,
            seed=self._rewrite_seed(episode),
        )

    @staticmethod
    def elimination(episode: Episode, rewrite: Rewrite) -> str | None:
        """Why `rewrite` of `episode`'s instruction is eliminated, or `None` when the reviewer should judge it."""
        # A reason the rewriter found itself (e.g. a dropped constraint) comes before the text rules
        return rewrite.rejection or elimination_reason(episode.instruction, rewrite.instruction)

    def apply_step(
        self,
        episode: Episode,
        operation: str,
        rewrite: Rewrite | None = None,
        elimination: str | None = None,
        review: Review | None = None,
    ) -> StepResult:
        """
        Ends one step of one episode: `operation` was taken (a name; `stop` needs no `rewrite`), the rewriter answered
        `rewrite`, [`~InstructionEnv.elimination`] gave `elimination` and, when it gave none, the reviewer answered
        `review`. Updates `episode` and returns the step as a one-entry [`StepResult`] (episode index 0). [`step`]
        plays batches with it; the generation stage calls it per episode, as each one's queries return.
        """
        instruction = episode.instruction
        result = StepResult(
            episode_indices=[0], operation=[operation], instructions=[instruction], new_instructions=[instruction],
            information_gain=[False], elimination=[None], accepted=[False], queries=[0], done=[False],
            gain_probability=[None], review_failed=[False], cleanups=[()],
        )  # fmt: skip
        if operation == STOP_ACTION:
            episode.done, episode.end_reason = True, STOP_ACTION
            result.done[0] = True
            return result
        result.new_instructions[0] = rewrite.instruction
        result.queries[0] += 1
        episode.failed_queries += int(rewrite.usage is not None and rewrite.usage.failed)
        result.cleanups[0] = rewrite.cleanups
        result.elimination[0] = elimination
        if review is not None:
            result.queries[0] += 1
            # A verdict that could not be parsed is also `failed`, but it was answered (and cached): not counted
            episode.failed_queries += int(review.usage is not None and review.usage.failed and not review.verdict)
            result.information_gain[0] = review.information_gain
            result.gain_probability[0] = review.probability
            result.review_failed[0] = review.usage is not None and review.usage.failed
            result.accepted[0] = review.information_gain

        episode.history.append(operation)
        if elimination is not None:
            if self.end_on_elimination:
                episode.done, episode.end_reason = True, f"elimination:{elimination}"
        elif result.accepted[0]:
            episode.instruction = rewrite.instruction
            episode.constraints = rewrite.constraints
            episode.accepted.append(
                Evolution(
                    episode.instruction,
                    tuple(episode.history),
                    len(episode.accepted) + 1,
                    episode.constraints,
                    result.gain_probability[0],
                )
            )
        if not episode.done and len(episode.history) >= self.max_operations:
            episode.done, episode.end_reason = True, "max_operations"
        result.done[0] = episode.done
        return result
