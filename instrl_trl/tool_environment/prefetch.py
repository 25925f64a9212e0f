"""
Prefetched tool calls: within one iteration of TRL's tool loop, the rewrites (and reviews) of every completion's next
operation go to the endpoint at once, while each step is still applied, counted and rewarded when TRL calls its tool.

TRL's `GRPOTrainer._tool_call_loop` runs the tool calls of an iteration one completion after another, each blocking,
so a rollout of G completions keeps one query in flight at a server that could answer many. The first tool call of
an iteration starts a *round*: the first call of every completion whose last message asks for tools is fetched ahead,
from one thread pool per server (bounded by the role's `max_concurrency`). Each environment's roles are stand-ins
([`PrefetchedRewriter`], [`PrefetchedReviewer`]) that hand its fetched answers to
[`~instrl_trl.environment.InstructionEnv.step`] when TRL calls the tool, so that everything that depends on order
(the step, the query accounting, the reward functions and their memories, the statistics) happens in TRL's order,
the same as without prefetch, whatever the server's timing; an error of a fetch is raised where the call would have
raised it.

```
 TRL, iteration k           completion 0           completion 1           completion 2 (its first call is `stop`)
 first tool call      -->   round: rewrite -> review   rewrite -> review   (nothing to fetch)      all in flight
 tool of completion 0 -->   step: waits for its answers, applies them, counts the queries, rewards
 tool of completion 1 -->   step: ...
```

Only calls TRL is about to make are fetched: the first call of a message (a later call of the same message starts from
the state the first one leaves), of an operation tool, with no arguments, on an episode that has not ended, and each
message once (a message whose tool results TRL rolled back for length stays last, and is not called again). With a
response cache, a request equal to one already in the round is left to its own tool call, which the cache then answers
as it would have without prefetch (one paid query, not two).
"""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..backends.base import Review, Reviewer, Rewrite, Rewriter, RewriteRequest
from ..backends.cached_generator import CachedGenerator
from ..backends.role_calls import ServerPools, endpoint_of


if TYPE_CHECKING:
    from .environment import InstructionEnvironment, InstructionEnvironmentFactory


def has_response_cache(role) -> bool:
    """Whether `role`'s queries go through a [`~instrl_trl.backends.cached_generator.CachedGenerator`]."""
    generator = getattr(role, "generator", None)
    while generator is not None:
        if isinstance(generator, CachedGenerator):
            return True
        generator = getattr(generator, "generator", None)
    return False


class _AfterFirst:
    """
    The answer to a request equal to one already fetched (`first`): asked once `first` is answered, so that the
    response cache answers it, as it would have without prefetch.
    """

    def __init__(self, first: Future, call: Callable[[], list]):
        self.first = first
        self.call = call

    def result(self) -> list:
        self.first.exception()  # waits; what `first` raised is raised by its own step
        return self.call()


class _HeldAnswer:
    """One environment's fetched answer for its next call of a role: what it was asked (`key`) and its future."""

    def __init__(self):
        self._held: tuple[Any, Future | _AfterFirst] | None = None

    def hold(self, key, future: Future | _AfterFirst) -> None:
        if self._held is not None:
            raise RuntimeError("An environment already holds a prefetched answer it has not used (a prefetch bug).")
        self._held = (key, future)

    @property
    def holding(self) -> bool:
        return self._held is not None

    def release(self) -> None:
        self._held = None

    def answer(self, key, call: Callable[[], list]) -> list:
        """The held answer when it was fetched for `key` (raising what the fetch raised), else `call()`."""
        held, self._held = self._held, None
        if held is None:
            return call()
        if held[0] != key:
            raise RuntimeError(
                f"A prefetched answer was fetched for {held[0]!r} but the step asks for {key!r} (a prefetch bug)."
            )
        return held[1].result()


class PrefetchedRewriter(Rewriter):
    r"""
    The rewriter of one [`~instrl_trl.tool_environment.InstructionEnvironment`]: answers the next `rewrite` call from
    the answer [`ToolCallPrefetcher`] fetched for it, if any, else asks `rewriter`.

    Args:
        rewriter ([`~instrl_trl.backends.base.Rewriter`]): the run's rewriter.
    """

    def __init__(self, rewriter: Rewriter):
        self.rewriter = rewriter
        self.model_name = rewriter.model_name
        self.held = _HeldAnswer()

    def check_operations(self, operations) -> None:
        self.rewriter.check_operations(operations)

    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]:
        return self.held.answer(list(requests), lambda: self.rewriter.rewrite(requests))


class PrefetchedReviewer(Reviewer):
    r"""
    The reviewer of one [`~instrl_trl.tool_environment.InstructionEnvironment`]: answers the next `review` call from
    the answer [`ToolCallPrefetcher`] fetched for it, if any, else asks `reviewer`.

    Args:
        reviewer ([`~instrl_trl.backends.base.Reviewer`]): the run's reviewer.
    """

    def __init__(self, reviewer: Reviewer):
        self.reviewer = reviewer
        self.model_name = reviewer.model_name
        self.held = _HeldAnswer()

    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        return self.held.answer((list(originals), list(rewrites)), lambda: self.reviewer.review(originals, rewrites))


class ToolCallPrefetcher:
    r"""
    Fetches the rewrite and review queries of a tool-loop iteration ahead, all at once (see the module's docstring).
    Only for a rewriter on an HTTP endpoint; a reviewer answered in this process (the rules engine, a transformers
    model) reviews when the tool is called, in the calling thread.

    Args:
        factory ([`~instrl_trl.tool_environment.InstructionEnvironmentFactory`]):
            The environments' factory: its roles and operations.
    """

    def __init__(self, factory: "InstructionEnvironmentFactory"):
        if endpoint_of(factory.rewriter) is None:
            raise ValueError(
                "Tool calls are prefetched only for a rewriter on an HTTP endpoint (`backend: endpoint`); a local "
                "rewriter answers in this process, one call after another."
            )
        self.factory = factory
        self._operations = set(factory.operations.names)
        self._review_ahead = endpoint_of(factory.reviewer) is not None
        # With a cache, the second of two equal requests is a cache hit when asked after the first: ask it then
        self._one_per_rewrite = has_response_cache(factory.rewriter)
        self._one_per_review = has_response_cache(factory.reviewer)
        self._tool_names = set(factory.tool_names)

    @contextmanager
    def prefetching(
        self,
        environments: list["InstructionEnvironment"],
        completions: list[list[dict]],
        tool_dicts: list[dict[str, Callable]],
    ) -> Iterator[None]:
        """
        Within the block (one call of TRL's tool loop), the environments' tools in `tool_dicts` (TRL's per-completion
        dicts, `environments[i]`'s in `tool_dicts[i]`) start a round of prefetches when completions in `completions`
        (TRL's lists of messages, changed by the loop) wait for their first call. Raises a `RuntimeError` at the end
        when a fetched answer was not used.
        """
        pools = ServerPools({"rewriter": self.factory.rewriter, "reviewer": self.factory.reviewer})
        self._rewriter_pool = pools.pool_for(self.factory.rewriter)
        self._reviewer_pool = pools.pool_for(self.factory.reviewer) if self._review_ahead else None
        self._environments = environments
        self._completions = completions
        # Messages already looked at, kept alive so that their ids stay theirs
        self._seen: dict[int, dict] = {}
        originals = [dict(tools) for tools in tool_dicts]
        for tools in tool_dicts:
            for name in self._tool_names.intersection(tools):
                tools[name] = self._starting_rounds(tools[name])
        failed = True
        try:
            yield
            failed = False
        finally:
            for tools, original in zip(tool_dicts, originals, strict=True):
                tools.update(original)
            unused = [index for index, env in enumerate(environments) if self._holds_answers(env)]
            for environment in environments:
                environment._env.rewriter.held.release()
                environment._env.reviewer.held.release()
            pools.shutdown()
            self._environments, self._completions, self._seen = [], [], {}
            if unused and not failed:
                raise RuntimeError(
                    f"Completions {unused} hold prefetched answers that TRL's tool loop never used: their queries "
                    "were sent but not counted. This is a bug of the prefetch; set `pipelined_tool_calls=False`."
                )

    @staticmethod
    def _holds_answers(environment: "InstructionEnvironment") -> bool:
        return environment._env.rewriter.held.holding or environment._env.reviewer.held.holding

    def _starting_rounds(self, tool: Callable[..., str]) -> Callable[..., str]:
        def call(**arguments):
            self._fetch_pending()
            return tool(**arguments)

        call.__name__ = tool.__name__
        return call

    def _first_operation(self, message: dict) -> str | None:
        """The operation of `message`'s first tool call, when TRL will call it as a tool without arguments."""
        tool_calls = message.get("tool_calls")
        if not tool_calls:
            return None
        call = tool_calls[0]
        function = call.get("function") if call.get("type") == "function" else None
        if not isinstance(function, dict) or function.get("name") not in self._operations:
            return None
        # TRL calls `tool(**arguments)`: an operation tool with arguments fails before any query
        arguments = function.get("arguments")
        return function["name"] if isinstance(arguments, dict) and not arguments else None

    def _fetch_pending(self) -> None:
        """Fetches the first call of every message not seen yet (one round per iteration: at its first tool call)."""
        rewrites_asked: list[RewriteRequest] = []
        reviews_asked: dict[tuple[str, str], Future] = {}
        reviews_lock = threading.Lock()
        for index, messages in enumerate(self._completions):
            message = messages[-1] if messages else None
            if message is None or id(message) in self._seen:
                continue
            self._seen[id(message)] = message
            operation = self._first_operation(message)
            env = self._environments[index]._env
            episode = env.episodes[0]
            if operation is None or episode.done:
                continue
            request = env.rewrite_request(episode, operation)
            if self._one_per_rewrite:
                # The LLM rewriter's prompt does not show the history: requests equal without it share a cache entry
                asked = replace(request, history=())
                if asked in rewrites_asked:
                    continue
                rewrites_asked.append(asked)
            future = self._rewriter_pool.submit(self._rewrite_then_review, env, request, reviews_asked, reviews_lock)
            env.rewriter.held.hold([request], future)

    def _rewrite_then_review(
        self, env, request: RewriteRequest, reviews_asked: dict[tuple[str, str], Future], lock: threading.Lock
    ) -> list:
        """
        Runs in a server's thread: the rewrite, then (submitted to the reviewer's server before the rewrite is handed
        over, so that the step finds it held) the review the step will ask for.
        """
        rewrites = env.rewriter.rewriter.rewrite([request])
        episode = env.episodes[0]
        if self._reviewer_pool is None or len(rewrites) != 1 or env.elimination(episode, rewrites[0]) is not None:
            return rewrites
        pair = (episode.instruction, rewrites[0].instruction)
        reviewer = env.reviewer.reviewer
        with lock:
            first = reviews_asked.get(pair) if self._one_per_review else None
            if first is None:
                future = self._reviewer_pool.submit(reviewer.review, [pair[0]], [pair[1]])
                reviews_asked[pair] = future
            else:
                future = _AfterFirst(first, lambda: reviewer.review([pair[0]], [pair[1]]))
        env.reviewer.held.hold(([pair[0]], [pair[1]]), future)
        return rewrites
