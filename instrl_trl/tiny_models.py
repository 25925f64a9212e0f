"""
A tiny Llama chat model built from a config, with a word-level tokenizer made locally with `tokenizers` from the
quickstart seeds: nothing is downloaded. It is the offline default base model of the quickstart pipeline (it learns
little; it shows that every stage runs) and the tests' fixture.
"""

import json
from importlib.resources import files

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


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
