"""
Tiny Llama chat models built from a config, with tokenizers made locally with `tokenizers`: nothing is downloaded.

- `build_tiny_causal_lm`: a word-level tokenizer made from the quickstart seeds. The offline default base model of the
  quickstart pipeline (it learns little; it shows that every stage runs) and the tests' fixture.
- `build_tiny_tool_chat_model`: a byte-level BPE tokenizer and a tool-calling chat template, the base of the offline
  instructor (`train-instructor`), which TRL's `GRPOTrainer` drives through tool calls.
"""

import copy
import json
from importlib.resources import files

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl.chat_template_utils import qwen3_template


PAD_TOKEN, UNK_TOKEN, EOS_TOKEN = "<|pad|>", "<|unk|>", "<|end|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN, EOS_TOKEN, *ROLE_TOKENS]
# One turn per message, closed by the EOS token; the generation prompt opens the assistant's turn
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def training_corpus() -> list[str]:
    """The quickstart seed instructions: the sentences the tokenizer is trained on (and good test prompts)."""
    seeds_file = files("instrl_trl.data").joinpath("quickstart_seeds.jsonl")
    return [json.loads(line)["instruction"] for line in seeds_file.read_text().splitlines() if line.strip()]


def _build_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # Every word of the corpus fits, so the vocabulary is the same set in every process
    words = sorted({word for text in training_corpus() for word, _ in _pre_tokenize(tokenizer, text)})
    # Ids are assigned here in sorted order, not by the trainer, whose order among equal counts follows hashing:
    # every process then builds the same tokenizer and so the same model
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({word: len(vocab) + i for i, word in enumerate(w for w in words if w not in vocab)})
    tokenizer.model = models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN)
    # Special tokens are matched before normalization and pre-tokenization, so `<|user|>` stays one token
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    fast_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=UNK_TOKEN,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=512,
    )
    fast_tokenizer.chat_template = CHAT_TEMPLATE
    return fast_tokenizer


def _pre_tokenize(tokenizer: Tokenizer, text: str) -> list[tuple[str, tuple[int, int]]]:
    return tokenizer.pre_tokenizer.pre_tokenize_str(tokenizer.normalizer.normalize_str(text))


def build_tiny_causal_lm(
    output_dir: str,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    initializer_range: float = 0.2,
) -> str:
    r"""
    Writes a tiny [`~transformers.LlamaForCausalLM`] and its chat tokenizer to `output_dir` and returns the folder.

    The weights are random (`torch.manual_seed(0)`), so the model answers gibberish, but deterministically: the same
    folder is built in every process.

    Args:
        output_dir (`str`):
            Where to save the model and tokenizer.
        hidden_size (`int`, *optional*, defaults to `32`):
            Width of the model (the MLP is twice as wide).
        num_hidden_layers (`int`, *optional*, defaults to `2`):
            Number of decoder layers.
        num_attention_heads (`int`, *optional*, defaults to `2`):
            Number of attention heads (also the number of key-value heads).
        initializer_range (`float`, *optional*, defaults to `0.2`):
            Standard deviation of the random weights. Larger than Llama's `0.02` so that the next-token logits are
            well separated: greedy decoding then does not flip on float rounding (padded vs unpadded batches).

    Returns:
        `str`: `output_dir`.
    """
    tokenizer = _build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_attention_heads,
        max_position_embeddings=512,
        initializer_range=initializer_range,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, do_sample=False
    )
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


TOOL_CHAT_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TOOL_CALL_TOKENS = ("<tool_call>", "</tool_call>")
# ChatML with Qwen2.5's tool-call syntax (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`), which TRL parses
# with its stored Qwen3 response template. Tools are listed by name in a one-line system turn, not as full JSON
# schemas as Qwen2.5 does: a tiny model cannot read schemas, and short prompts made SFT and GRPO 5x faster on CPU.
# `{% generation %}` marks the assistant's tokens, so a warm start can train on them alone. (Jinja drops the first
# newline after a block tag, hence `{{ '\n' }}`.)
TOOL_CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools:"
    "{% for tool in tools %} {{ tool.function.name if tool.function is defined else tool.name }}{% endfor %}"
    "<|im_end|>\n{% endif %}"
    "{% for message in messages %}"
    "{% if message.role == 'assistant' %}<|im_start|>assistant\n{% generation %}{{ message.content or '' }}"
    "{% for call in message.tool_calls or [] %}"
    "{% set function = call.function if call.function is defined else call %}"
    '<tool_call>\n{"name": "{{ function.name }}", "arguments": '
    "{{ function.arguments if function.arguments is string else function.arguments | tojson }}}\n</tool_call>"
    "{% endfor %}<|im_end|>{% endgeneration %}{{ '\\n' }}"
    "{% else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _build_byte_level_tokenizer(corpus: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    # Byte-level BPE decodes losslessly: TRL finds tool calls in the decoded text, which a word-level tokenizer (with
    # its unknown token and lost spacing) breaks
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(TOOL_CHAT_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.add_special_tokens(list(TOOL_CHAT_SPECIAL_TOKENS))
    # Not special, as in Qwen: decoding with `skip_special_tokens=True` keeps the calls readable
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in TOOL_CALL_TOKENS])
    pad, start, end = TOOL_CHAT_SPECIAL_TOKENS
    fast_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=pad,
        eos_token=end,  # the end-of-turn token: generation stops there, and TRL's tool loop expects it
        additional_special_tokens=[start],
        model_max_length=1024,
    )
    fast_tokenizer.chat_template = TOOL_CHAT_TEMPLATE
    # The template is ours, so TRL cannot recognize it; its calls use Qwen's syntax, which this parser reads
    fast_tokenizer.response_template = copy.deepcopy(qwen3_template)
    return fast_tokenizer


def build_tiny_tool_chat_model(
    output_dir: str,
    corpus: list[str],
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    max_position_embeddings: int = 1024,
) -> str:
    r"""
    Writes a tiny [`~transformers.LlamaForCausalLM`] with a tool-calling chat template to `output_dir` and returns the
    folder. Its byte-level BPE tokenizer is trained here on `corpus` (nothing is downloaded); the weights are random
    (`torch.manual_seed(0)`), so it emits no tool call until it is warm-started on transcripts that contain some.

    The chat template is ChatML with Qwen2.5's `<tool_call>` syntax and a one-line system turn listing the tools by
    name; `tokenizer.response_template` is set so that TRL's `GRPOTrainer` parses the calls, and `<|im_end|>` (the
    end of a turn) is the EOS token.

    Args:
        output_dir (`str`):
            Where to save the model and tokenizer.
        corpus (`list[str]`):
            Texts the tokenizer is trained on, e.g. rendered chat transcripts with tool calls: frequent pieces (tool
            names, the call syntax) then take few tokens. Any text still encodes, byte by byte.
        vocab_size (`int`, *optional*, defaults to `1024`):
            Maximum vocabulary size of the BPE tokenizer (fewer when the corpus runs out of merges).
        hidden_size (`int`, *optional*, defaults to `64`):
            Width of the model (the MLP is twice as wide).
        num_hidden_layers (`int`, *optional*, defaults to `2`):
            Number of decoder layers.
        num_attention_heads (`int`, *optional*, defaults to `4`):
            Number of attention heads (also the number of key-value heads).
        max_position_embeddings (`int`, *optional*, defaults to `1024`):
            Longest sequence (prompt, calls and tool replies) the model takes.

    Returns:
        `str`: `output_dir`.
    """
    if not corpus:
        raise ValueError("`corpus` is empty: pass the texts the tokenizer should be trained on.")
    tokenizer = _build_byte_level_tokenizer(corpus, vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_attention_heads,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, do_sample=False
    )
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
