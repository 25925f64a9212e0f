"""
A tiny world whose every outcome is known by hand, for the measurement tests (policy reports, constant sequences).

Operations: `grow` appends " (grown)", which the reviewer accepts, except on a "stubborn" instruction (left
unchanged: no gain) and on a "fragile" one that already grew (eliminated); `idle` appends " (idle)", which adds
nothing; `break` is always eliminated. Rewrite: 1 query; review (unless eliminated): 1 more.
"""

import random

from instrl_trl.backends.base import Review, Reviewer, Rewrite, Rewriter, RewriteRequest
from instrl_trl.environment import InstructionEnv
from instrl_trl.operations import Operation, OperationLibrary


GROW, IDLE, BREAK = "grow", "idle", "break"
POEM, RIVER, VASE = "Write a poem.", "Name a stubborn river.", "Fix a fragile vase."
SEEDS = [POEM, RIVER, VASE]


class ScriptedRewriter(Rewriter):
    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]:
        return [self._rewrite(request) for request in requests]

    @staticmethod
    def _rewrite(request: RewriteRequest) -> Rewrite:
        instruction, name = request.instruction, request.operation.name
        if name == BREAK or (name == GROW and "fragile" in instruction and "(grown)" in instruction):
            return Rewrite(f"{instruction} (broken)", rejection="scripted")
        if name == GROW and "stubborn" not in instruction:
            return Rewrite(f"{instruction} (grown)")
        if name == IDLE:
            return Rewrite(f"{instruction} (idle)")
        return Rewrite(instruction)


class ScriptedReviewer(Reviewer):
    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        gains = [
            rewrite.count("(grown)") > original.count("(grown)")
            for original, rewrite in zip(originals, rewrites, strict=True)
        ]
        return [Review(gain, "Not Equal" if gain else "Equal") for gain in gains]


def scripted_operations() -> OperationLibrary:
    return OperationLibrary(Operation(name, f"The scripted {name}.", "{instruction}") for name in (GROW, IDLE, BREAK))


def make_scripted_env(max_operations: int = 4, end_on_elimination: bool = True) -> InstructionEnv:
    return InstructionEnv(
        scripted_operations(),
        ScriptedRewriter(),
        ScriptedReviewer(),
        max_operations=max_operations,
        end_on_elimination=end_on_elimination,
    )


class RandomWorldRewriter(Rewriter):
    """
    A seeded random world for property tests: each rewrite (by instruction, operation and step) is eliminated with
    probability `p_eliminate`, else adds a word with probability `p_gain`, else changes nothing.
    """

    def __init__(self, world: int, p_eliminate: float, p_gain: float):
        self.world, self.p_eliminate, self.p_gain = world, p_eliminate, p_gain

    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]:
        rewrites = []
        for request in requests:
            draw = random.Random(f"{self.world}:{request.instruction}:{request.operation.name}:{len(request.history)}")
            u = draw.random()
            if u < self.p_eliminate:
                rewrites.append(Rewrite(request.instruction, rejection="random"))
            elif u < self.p_eliminate + self.p_gain:
                rewrites.append(Rewrite(f"{request.instruction} {request.operation.name}{len(request.history)}"))
            else:
                rewrites.append(Rewrite(request.instruction))
        return rewrites


class ChangeReviewer(Reviewer):
    """Information gain whenever the text changed."""

    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        return [
            Review(new != old, "Not Equal" if new != old else "Equal")
            for old, new in zip(originals, rewrites, strict=True)
        ]


def make_random_world_env(world: int, max_operations: int = 3) -> InstructionEnv:
    draw = random.Random(world)
    rewriter = RandomWorldRewriter(world, p_eliminate=draw.uniform(0.0, 0.3), p_gain=draw.uniform(0.3, 0.9))
    return InstructionEnv(scripted_operations(), rewriter, ChangeReviewer(), max_operations=max_operations)
