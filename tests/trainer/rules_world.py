"""
The rules engine's world for the learning tests: behind a server (a chat-completions responder that rewrites as the
rules rewriter would), and what a policy trained in it picks first for each seed.
"""

import zlib
from collections.abc import Callable

from instrl_trl.backends.base import RewriteRequest
from instrl_trl.backends.rules import RulesRewriter
from instrl_trl.operations.operation import INSTRUCTION_PLACEHOLDER


def rules_world(operations) -> Callable[[list[dict]], str]:
    """
    A server's answers as the rules engine would rewrite: the operation is read from the prompt (the text before the
    instruction is its template's), the instruction after it, and the rules rewriter applies one to the other.

    A server sees one prompt, not the episode: the rewrite has no history (so `breadth` never leaks its marker, which
    the in-process engine does after a first evolution), no constraints carried (the LLM rewriter draws and checks
    its own), and only the instruction's first paragraph (the prompt's next one is its label; `complicate_input`'s
    block is lost). Its episodes are longer and more often accepted than the in-process engine's: a world of its own,
    for comparing runs within it.
    """
    rewriter = RulesRewriter()
    prefixes = {
        name: operation.prompt_template.split(INSTRUCTION_PLACEHOLDER)[0] for name, operation in operations.items()
    }

    def respond(messages: list[dict]) -> str:
        text = [message["content"] for message in messages if message["role"] == "user"][-1]
        [name] = [name for name, prefix in prefixes.items() if text.startswith(prefix)]
        instruction = text[len(prefixes[name]) :].split("\n\n", 1)[0]
        request = RewriteRequest(instruction, operations[name], seed=zlib.crc32(instruction.encode()))
        return rewriter.rewrite([request])[0].instruction

    return respond


def greedy_first_operations(trainer, seeds: list[str]) -> list[str]:
    """The operation the trainer's policy picks first, greedily, for each of `seeds`."""
    actions, _, _ = trainer.policy_act_fn(greedy=True)(trainer.env.reset(seeds))
    return [trainer.action_names[action] for action in actions.tolist()]
