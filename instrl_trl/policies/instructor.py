"""
Playing the instructor's episodes outside training: a trained instructor chooses the operations for a batch of seed
instructions by calling the environment's tools, as in a GRPO rollout. Generation (`generate --policy <instructor>`)
calls [`choose_operations_with_instructor`].
"""

from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..environment import Evolution
from ..tool_environment import DEFAULT_TASK_PROMPT
from ..tool_environment.environment import InstructionEnvironmentFactory


@dataclass
class InstructorEpisode:
    r"""
    One seed instruction evolved by the instructor.

    Parameters:
        seed (`str`): the seed instruction.
        instruction (`str`): the instruction at the end of the episode.
        operations (`tuple[str, ...]`): the operations applied, in order (names of the library).
        accepted (`list[Evolution]`): every accepted evolved instruction, with the operations that made it.
        stopped (`bool`): whether the instructor called `stop`.
        messages (`list[dict]`): the conversation (prompt, tool calls, tool replies).
        returns_at_acceptance (`list[float]`): summed step rewards up to each of `accepted` (no `stop_reward`).
        failed_queries (`int`): queries of the episode that got no answer from their backend (after its retries).
    """

    seed: str
    instruction: str
    operations: tuple[str, ...]
    accepted: list[Evolution]
    stopped: bool
    messages: list[dict]
    returns_at_acceptance: list[float] = field(default_factory=list)
    failed_queries: int = 0


def _parse(tokenizer: PreTrainedTokenizerBase, text: str) -> dict:
    try:
        return tokenizer.parse_response(text, prefix="")
    except (ValueError, KeyError, TypeError):  # an unparseable answer ends the episode, as in TRL's rollouts
        return {"role": "assistant", "content": text}


def _normalized_call(call: dict) -> dict:
    # A malformed call (e.g. no `arguments`) would otherwise crash the chat template at the next turn, which
    # renders every call of the conversation
    function = call.get("function", call)
    arguments = function.get("arguments")
    return {"type": "function", "function": {"name": str(function.get("name")), "arguments": arguments or {}}}


@torch.no_grad()
def choose_operations_with_instructor(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    instructions: list[str],
    environment_factory: InstructionEnvironmentFactory,
    task_prompt: str = DEFAULT_TASK_PROMPT,
    max_tool_calls: int | None = None,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
) -> list[InstructorEpisode]:
    r"""
    Lets the instructor evolve each instruction by tool calls: each turn, the running conversations are generated in
    one batch, their tool calls run in their environments (rewriter, elimination rules, reviewer; queries counted in
    `environment_factory.accounting`), and a conversation ends at a turn without a tool call, or after
    `max_tool_calls` turns.

    Args:
        model ([`~transformers.PreTrainedModel`]), tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            The instructor and its tokenizer (with a tool-calling chat template and a `response_template`).
        instructions (`list[str]`):
            Seed instructions.
        environment_factory ([`InstructionEnvironmentFactory`]):
            Builds one environment per instruction.
        task_prompt (`str`, *optional*):
            The user message the instructor was trained with.
        max_tool_calls (`int`, *optional*):
            Turns per conversation; defaults to `max_operations + 1`.
        max_new_tokens (`int`, *optional*, defaults to `64`):
            Tokens per turn.
        do_sample (`bool`, *optional*, defaults to `False`), temperature (`float`, *optional*, defaults to `1.0`):
            Greedy decoding by default; seed torch for reproducible sampling.

    Returns:
        `list[InstructorEpisode]`: one per instruction, in order.
    """
    max_tool_calls = max_tool_calls if max_tool_calls is not None else environment_factory.max_operations + 1
    environments = [environment_factory() for _ in instructions]
    conversations = [
        [{"role": "user", "content": task_prompt + environment.reset(instruction=instruction)}]
        for environment, instruction in zip(environments, instructions, strict=True)
    ]
    tools = [getattr(environments[0], name) for name in environment_factory.tool_names] if environments else []
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        running = list(range(len(instructions)))
        for _ in range(max_tool_calls):
            if not running:
                break
            encoded = tokenizer.apply_chat_template(
                [conversations[i] for i in running],
                tools=tools,
                add_generation_prompt=True,
                padding=True,
                return_tensors="pt",
                return_dict=True,
            ).to(model.device)
            output = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            completions = output[:, encoded["input_ids"].shape[1] :]
            still_running = []
            for i, ids in zip(running, completions.tolist(), strict=True):
                ids = [token for token in ids if token != tokenizer.pad_token_id]
                if tokenizer.eos_token_id in ids:
                    ids = ids[: ids.index(tokenizer.eos_token_id) + 1]
                message = _parse(tokenizer, tokenizer.decode(ids, skip_special_tokens=False))
                calls = [_normalized_call(call) for call in message.get("tool_calls") or []]
                reply_message = {"role": "assistant", "content": message.get("content") or ""}
                if calls:
                    reply_message["tool_calls"] = calls
                conversations[i].append(reply_message)
                for call in calls:
                    name, arguments = call["function"]["name"], call["function"]["arguments"]
                    tool = getattr(environments[i], name, None) if name in environment_factory.tool_names else None
                    try:
                        if tool is None:
                            raise ValueError(f"Tool {name} not found.")
                        reply = tool(**arguments)
                    except (ValueError, TypeError) as error:  # a bad call is reported to the model, as TRL does
                        reply = {"error": str(error)}
                    conversations[i].append({"role": "tool", "name": str(name), "content": str(reply)})
                if calls:
                    still_running.append(i)
            running = still_running
    finally:
        tokenizer.padding_side = padding_side
    return [
        InstructorEpisode(
            seed=instruction,
            instruction=environment.instruction,
            operations=environment.operations,
            accepted=environment.accepted,
            stopped=environment.stopped,
            messages=messages,
            returns_at_acceptance=environment.returns_at_acceptance,
            failed_queries=environment.failed_queries,
        )
        for instruction, environment, messages in zip(instructions, environments, conversations, strict=True)
    ]
