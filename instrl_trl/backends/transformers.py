"""A local causal LM as a [`TextGenerator`]: batched, left-padded `generate` with any `from_pretrained` model."""

import copy
import functools
import inspect
import json
import logging
import time
import zlib
from typing import Any

import torch
from accelerate import PartialState
from transformers import (
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    set_seed,
)

from .base import ChoiceScores, Generation, Prompt, TextGenerator, Usage, prompt_messages
from .device_defaults import default_batch_size, default_dtype
from .local_models import load_shared_model, resolve_dtype
from .thinking import THINKING_FIX, answer_after_thinking
from .verdicts import choice_probabilities


# Plain `logging`, not accelerate's: the backend also runs outside any accelerate state (generation stage, CLI)
logger = logging.getLogger(__name__)

# Keywords of `generate` that are not `GenerationConfig` fields
_GENERATE_KEYWORDS = frozenset({"logits_processor", "stopping_criteria", "prefix_allowed_tokens_fn"})
# Names other backends use, with what to write instead
_FIXES = {
    "max_tokens": "write `max_new_tokens` (the transformers name of the length limit)",
    "max_completion_tokens": "write `max_new_tokens` (the transformers name of the length limit)",
    "stop": "write `stop_strings`",
    "seed": "set the role's `seed` (a setting of the transformers backend, beside `model`), not a generation kwarg",
    "n": "ask once per sample: a role sends one prompt per item",
}


class TransformersGenerator(TextGenerator):
    r"""
    Generates with a local causal language model through [`~transformers.GenerationMixin.generate`].

    Each prompt is sent as one user message, or as the chat messages it lists: the tokenizer's chat template is
    applied when it has one, otherwise the contents are used as they are. Prompts are generated in batches of
    `batch_size`, left-padded (sorted by length first, so that a batch holds prompts of similar lengths), and each
    completion stops at the first end-of-sequence token or after `max_new_tokens` tokens.

    The model and tokenizer are loaded when the generator is built, so that a wrong path or revision fails before
    any query is spent. Generators of one process that load the same model (path, revision, dtype and device) share
    one loaded copy, so that a rewriter and a reviewer on the same model hold it once; each keeps its own
    generation settings. The copy is freed when the last generator using it is.

    Args:
        model_name_or_path (`str` or `None`, *optional*, defaults to `None`):
            Hub model id or local folder, loaded with [`~transformers.AutoModelForCausalLM.from_pretrained`] and
            [`~transformers.AutoTokenizer.from_pretrained`], or a model name of our own such as
            `"smollm2-135m-instruct"` (see [`resolve_model_name`]). Required unless `model` and `tokenizer` are given.
        model ([`~transformers.PreTrainedModel`] or `None`, *optional*, defaults to `None`):
            An already-built causal LM, used instead of loading `model_name_or_path`. It is put in eval mode, and
            moved to `device` only when `device` is given.
        tokenizer ([`~transformers.PreTrainedTokenizerBase`] or `None`, *optional*, defaults to `None`):
            Tokenizer for `model`. It is modified in place: left padding, and the EOS token as pad token when it has
            none.
        dtype (`str`, `torch.dtype` or `None`, *optional*, defaults to `None`):
            Dtype to load the model in, such as `"float32"`, `"bfloat16"` or `"auto"` (the checkpoint's dtype). `None`
            picks the faster for the device ([`~instrl_trl.backends.device_defaults.default_dtype`]): on CPU,
            bfloat16 where the CPU has bfloat16 kernels and a short measured check finds it faster, else float32; on
            CUDA, bfloat16 where supported. Our model names (`"smollm2-135m-instruct"`) are converted once into that
            dtype.
        revision (`str` or `None`, *optional*, defaults to `None`):
            Branch, tag or commit of the Hub repository (the default branch when `None`).
        device (`str`, `torch.device` or `None`, *optional*, defaults to `None`):
            Where to run the model. `None` uses this process's device (`PartialState().device`, from accelerate) for
            a loaded model, and leaves a given `model` where it is.
        batch_size (`int` or `None`, *optional*, defaults to `None`):
            Prompts per `generate` call of the model. `None`: as many as the key-value cache allows in a quarter of
            the device's free memory, at most 64
            ([`~instrl_trl.backends.device_defaults.default_batch_size`]).
        max_new_tokens (`int`, *optional*, defaults to `256`):
            Most tokens generated per prompt (a call's `max_new_tokens` keyword overrides it).
        generation_kwargs (`dict` or `None`, *optional*, defaults to `None`):
            Default keyword arguments for `generate`, such as `temperature`, `top_p` or `do_sample`, updated by the
            keywords of each [`~TransformersGenerator.generate`] call. Decoding is greedy (`do_sample=False`) unless
            they say otherwise. Keys that are not [`~transformers.GenerationConfig`] fields (such as the endpoint's
            `max_tokens`) raise here.
        seed (`int` or `None`, *optional*, defaults to `None`):
            When sampling: `generate` takes no random generator, so samples follow torch's global random state. With a
            seed, [`~transformers.set_seed`] is called at the start of every `generate` call, so that the same
            prompts give the same samples. A call's per-prompt `seeds` are mixed in, batch by batch. Greedy decoding is
            deterministic either way.
        chat_template_kwargs (`dict` or `None`, *optional*, defaults to `None`):
            Variables for the model's chat template, as vLLM's and SGLang's `chat_template_kwargs`: for Qwen3,
            `{"enable_thinking": False}` turns its thinking off. Raises when the tokenizer has no chat template.

    Example:
    ```python
    >>> from instrl_trl.backends.transformers import TransformersGenerator

    >>> generator = TransformersGenerator("Qwen/Qwen2.5-0.5B-Instruct", max_new_tokens=64)  # doctest: +SKIP
    >>> generations = generator.generate(["Name a prime number.", "Say hello."])  # doctest: +SKIP
    >>> [generation.text for generation in generations]  # doctest: +SKIP
    ```
    """

    backend = "transformers"
    max_tokens_key = "max_new_tokens"
    choice_modes = ("likelihood",)

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        dtype: str | torch.dtype | None = None,
        revision: str | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        max_new_tokens: int = 256,
        generation_kwargs: dict[str, Any] | None = None,
        seed: int | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
    ):
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1 (or unset, to fit memory), got {batch_size}.")
        if max_new_tokens < 1:
            raise ValueError(f"`max_new_tokens` must be at least 1, got {max_new_tokens}.")
        if (model is None) != (tokenizer is None):
            raise ValueError("Pass both `model` and `tokenizer`, or neither (and `model_name_or_path`).")
        if model is None and model_name_or_path is None:
            raise ValueError("Pass `model_name_or_path`, or an already-built `model` and `tokenizer`.")
        self.check_generation_kwargs(generation_kwargs or {})

        self._shared = None
        if model is None:
            device = device if device is not None else PartialState().device
            dtype = resolve_dtype(dtype) if dtype is not None else default_dtype(device)
            self._shared = load_shared_model(model_name_or_path, dtype, revision, device)
            model, tokenizer = self._shared.model, self._shared.tokenizer
        elif device is not None:
            model.to(device)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_name = model_name_or_path or getattr(model, "name_or_path", None) or "unknown"
        self.revision = revision
        if batch_size is None:
            batch_size = default_batch_size(model.config, model.dtype, model.device, max_new_tokens)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.generation_kwargs = dict(generation_kwargs or {})
        self.seed = seed
        if chat_template_kwargs and self.tokenizer.chat_template is None:
            raise ValueError(
                f"`chat_template_kwargs` is set, but {self.model_name!r} has no chat template to pass them to: remove "
                "it, or use the model's instruct (chat) version."
            )
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        # Why the last failed generation failed and what to change, for the stage's failure message
        self.last_error: str | None = None

        # Left padding: generated tokens follow the last prompt token in every row of a batch
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def cache_identity(self) -> dict:
        """Backend, model, revision and dtype, and the default decoding settings, which change answers too."""
        return {
            "backend": self.backend,
            "model": self.model_name,
            "revision": self.revision,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "max_new_tokens": self.max_new_tokens,
            "generation_kwargs": dict(sorted(self.generation_kwargs.items())),
            "seed": self.seed,
            # Only when set: the answers cached before this setting existed keep their keys
            **({"chat_template_kwargs": self.chat_template_kwargs} if self.chat_template_kwargs else {}),
        }

    generation_key_fixes = _FIXES
    unknown_generation_key_fix = "use the fields of `transformers.GenerationConfig`"

    @classmethod
    def valid_generation_keys(cls) -> frozenset[str]:
        return _valid_generation_keys()

    def samples(self, generation_kwargs: dict) -> bool:
        """Whether `generate` samples with these settings: `do_sample`, unless `temperature` is `0` (greedy)."""
        kwargs = {"do_sample": False, **self.generation_kwargs, **generation_kwargs}
        return bool(kwargs["do_sample"]) and kwargs.get("temperature") != 0

    def format_prompts(self, prompts: list[Prompt]) -> list[str]:
        """
        The text the model sees for each prompt: its messages (a string is one user message) in the chat template,
        ending with the assistant's turn, rendered with `chat_template_kwargs`. Without a chat template, the messages'
        contents joined by blank lines.
        """
        if self.tokenizer.chat_template is None:
            return ["\n\n".join(m["content"] for m in prompt_messages(prompt)) for prompt in prompts]
        return [
            self.tokenizer.apply_chat_template(
                prompt_messages(prompt), add_generation_prompt=True, tokenize=False, **self.chat_template_kwargs
            )
            for prompt in prompts
        ]

    def score_choices(self, prompts: list[Prompt], choices, mode: str = "likelihood") -> list[ChoiceScores]:
        """
        The probability of each of `choices` as the model's whole answer to each prompt, without generating: each
        choice's log-likelihood, its end-of-sequence token included (so that "Equal" is not read as the start of
        "Equal parts"), normalised over the choices. The prompts run once (per `batch_size` prompts), and every
        choice continues them from their cached keys and values ([`~TransformersGenerator.choice_log_likelihoods`]).
        """
        if mode != "likelihood":
            raise ValueError(f"The transformers backend scores choices by `likelihood`, not {mode!r}.")
        if not prompts:
            return []
        if len(choices) < 2:
            raise ValueError(f"Give at least two `choices` to score, got {list(choices)}.")
        eos = self._eos_token_ids(None)[0]
        add_special_tokens = self.tokenizer.chat_template is None
        prompt_ids = self.tokenizer(self.format_prompts(prompts), add_special_tokens=add_special_tokens)["input_ids"]
        choice_ids = [self.tokenizer(choice, add_special_tokens=False)["input_ids"] + [eos] for choice in choices]
        start_time = time.perf_counter()
        log_likelihoods = torch.cat(
            [
                self.choice_log_likelihoods(prompt_ids[start : start + self.batch_size], choice_ids)
                for start in range(0, len(prompts), self.batch_size)
            ]
        )
        seconds = (time.perf_counter() - start_time) / len(prompts)
        results = []
        for p, values in enumerate(log_likelihoods.tolist()):
            probabilities = choice_probabilities(values)
            best = choices[probabilities.index(max(probabilities))]
            usage = Usage(prompt_tokens=len(prompt_ids[p]), seconds=seconds)
            results.append(ChoiceScores(probabilities, best, usage))
        return results

    def choice_log_likelihoods(self, prompt_ids: list[list[int]], choice_ids: list[list[int]]) -> torch.Tensor:
        """
        The log-likelihood of each choice's tokens after each prompt, as a `(prompts, choices)` float tensor: one
        forward pass over the left-padded prompts, then one short pass per choice over its tokens, from a copy of the
        prompts' key-value cache (the last choice takes the cache itself).

        ```
        prompts, left-padded      choice c, on the cache           scored
        [pad pad p1 p2 p3] ------> [c1 c2 ... c(n-1)]  (logits) -> c1 from p3's logits, c2..cn from c1..c(n-1)'s
        [p1  p2  p3 p4 p5] ------> [c1 c2 ... c(n-1)]
        ```

        Positions count from each row's first real token, as in an unpadded sequence, so that padding changes
        nothing but rounding.
        """
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in prompt_ids)
        # Left padding: every prompt ends in the last column, where each choice continues it
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompt_ids])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompt_ids])
        lengths = mask.sum(dim=1, keepdim=True)
        device = self.model.device
        # transformers 5 renames the key-value cache from `past_key_values` to `cache`, in arguments and outputs
        cache_key = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        scores = torch.zeros(len(prompt_ids), len(choice_ids))
        with torch.inference_mode():
            prompt = self.model(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                position_ids=(mask.cumsum(dim=1) - 1).clamp(min=0).to(device),
                use_cache=True,
            )
            # The token at position t is predicted by the logits at t - 1: each choice's first token by the prompt's
            first_log_probs = torch.log_softmax(prompt.logits[:, -1].float(), dim=-1).cpu()
            for c, ids in enumerate(choice_ids):
                scores[:, c] = first_log_probs[:, ids[0]]
                if len(ids) == 1:
                    continue
                cache = prompt[cache_key] if c == len(choice_ids) - 1 else copy.deepcopy(prompt[cache_key])
                fed = torch.tensor([ids[:-1]] * len(prompt_ids))
                logits = self.model(
                    input_ids=fed.to(device),
                    attention_mask=torch.cat([mask, torch.ones_like(fed)], dim=1).to(device),
                    position_ids=(lengths + torch.arange(len(ids) - 1)).to(device),
                    use_cache=True,
                    **{cache_key: cache},
                ).logits
                log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
                targets = torch.tensor(ids[1:]).expand(len(prompt_ids), -1)
                scores[:, c] += log_probs.gather(2, targets[..., None]).squeeze(2).sum(dim=1)
        return scores

    def generate(self, prompts: list[Prompt], seeds: list[int] | None = None, **generation_kwargs) -> list[Generation]:
        """
        One [`Generation`] per prompt, in order.

        Args:
            prompts (`list[str | list[dict]]`):
                User messages, or lists of chat messages (a system message, then the user's).
            seeds (`list[int]` or `None`, *optional*, defaults to `None`):
                One sampling seed per prompt. `generate` draws a batch from one random state, so when sampling the
                state is set from the seeds of the prompts in each batch (and the generator's `seed`): the same
                prompts and seeds in the same batches give the same samples.
            **generation_kwargs:
                Keyword arguments for [`~transformers.GenerationMixin.generate`] (`max_new_tokens`, `temperature`,
                `min_new_tokens`, `eos_token_id`, ...), over the generator's defaults.

        Returns:
            `list[Generation]`: the completions, without the prompt and special tokens. Their usage counts the prompt's
            tokens (padding excluded), the generated tokens up to and including the first end-of-sequence token, and
            an even share of the batch's wall time. A reasoning model's thinking is left out (the text after the
            last `</think>`, `thinking.py`); an answer that is all thinking (a `<think>` cut at the length limit) is
            a failed generation, `text=None`, with one warning per call. Errors (out of memory, a prompt longer than
            the model's context) are raised, not returned as failed generations: retrying a local model would fail
            the same way.
        """
        if not prompts:
            return []
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"Got {len(seeds)} `seeds` for {len(prompts)} prompts; pass one seed per prompt.")
        self.check_generation_kwargs(generation_kwargs)
        sampling = self.samples(generation_kwargs)
        kwargs = {"do_sample": False, "max_new_tokens": self.max_new_tokens, **self.generation_kwargs}
        kwargs.update(generation_kwargs)
        if kwargs.get("temperature") == 0:  # the OpenAI convention for greedy (the reviewer's default)
            kwargs.pop("temperature")
            kwargs["do_sample"] = False
        if "stop_strings" in kwargs:  # `generate` needs the tokenizer to find them
            kwargs["tokenizer"] = self.tokenizer
        eos_token_ids = self._eos_token_ids(kwargs.pop("eos_token_id", None))
        kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        per_batch_seeds = sampling and seeds is not None
        if self.seed is not None and not per_batch_seeds:
            set_seed(self.seed)

        texts = self.format_prompts(prompts)
        # A chat template writes its own special tokens (BOS included); a raw prompt gets the tokenizer's
        add_special_tokens = self.tokenizer.chat_template is None
        encodings = self.tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
        order = sorted(range(len(prompts)), key=lambda i: len(encodings[i]))
        generations: list[Generation | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            if per_batch_seeds:
                set_seed(_mix_seeds(self.seed, [seeds[i] for i in indices]))
            batch = self._generate_batch([encodings[i] for i in indices], eos_token_ids, kwargs)
            for i, generation in zip(indices, batch, strict=True):
                generations[i] = generation
        thinking_only = sum(generation.text is None for generation in generations)
        if thinking_only:  # once per call: a model that thinks past the limit does it for most prompts
            self.last_error = (
                f"{thinking_only} of {len(generations)} answers were all thinking (a `<think>` cut at the length "
                f"limit). {THINKING_FIX.rstrip('.')}"
            )
            logger.warning("%s: %s. Those count as failed queries.", self.model_name, self.last_error)
        return generations

    def _generate_batch(
        self, input_ids: list[list[int]], eos_token_ids: list[int], kwargs: dict[str, Any]
    ) -> list[Generation]:
        start = time.perf_counter()
        inputs = self.tokenizer.pad({"input_ids": input_ids}, return_tensors="pt").to(self.model.device)
        with torch.inference_mode():
            outputs = self.model.generate(**inputs, eos_token_id=eos_token_ids, **kwargs)
        # (batch, padded prompt + new tokens): with left padding every row's completion starts at the same column
        completions = outputs[:, inputs["input_ids"].shape[1] :].tolist()
        seconds = (time.perf_counter() - start) / len(input_ids)
        generations = []
        pad, limit = kwargs["pad_token_id"], kwargs.get("max_new_tokens")
        for prompt_ids, completion in zip(input_ids, completions, strict=True):
            # Rows that stopped early are padded up to the longest: cut at the first EOS, which is counted
            end = next((i for i, token in enumerate(completion) if token in eos_token_ids), None)
            if end is None:  # a stop string ends a row without EOS, and the padding follows it
                while completion and completion[-1] == pad:
                    completion = completion[:-1]
            num_tokens = len(completion) if end is None else end + 1
            text = answer_after_thinking(self.tokenizer.decode(completion[:end], skip_special_tokens=True))
            usage = Usage(
                failed=text is None, prompt_tokens=len(prompt_ids), completion_tokens=num_tokens, seconds=seconds
            )
            generations.append(Generation(text, usage, _finish_reason(end is not None, num_tokens, limit)))
        return generations

    def _eos_token_ids(self, eos_token_id: int | list[int] | None) -> list[int]:
        """The tokens that end a completion: the call's, else the model's generation config's, else the tokenizer's."""
        for candidate in (eos_token_id, self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if candidate is not None:
                return [candidate] if isinstance(candidate, int) else list(candidate)
        raise ValueError(
            f"No end-of-sequence token for {self.model_name!r}: neither its generation config nor its tokenizer sets "
            "one. Pass `eos_token_id` in `generation_kwargs`."
        )


def _finish_reason(ended: bool, num_tokens: int, max_new_tokens: int | None) -> str | None:
    """`"stop"` at an end of sequence or a stop string, `"length"` at `max_new_tokens`, `None` when unknown."""
    if ended or (max_new_tokens is not None and num_tokens < max_new_tokens):
        return "stop"
    return "length" if max_new_tokens is not None else None


def _mix_seeds(seed: int | None, seeds: list[int]) -> int:
    # crc32, not hash(): Python salts hashes per process, and samples must be reproducible across runs
    return zlib.crc32(json.dumps([seed, seeds]).encode())


@functools.cache
def _valid_generation_keys() -> frozenset[str]:
    fields = {key for key in GenerationConfig().to_dict() if not key.startswith("_")} - {"transformers_version"}
    return frozenset(fields | _GENERATE_KEYWORDS)
