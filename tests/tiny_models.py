"""Tiny models built from a config, with a tokenizer trained locally by `tokenizers` (nothing is downloaded)."""

import json
from importlib.resources import files

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

from instrl_trl.environment import format_state
from instrl_trl.operations import build_operation_library


def _training_corpus() -> list[str]:
    seeds_file = files("instrl_trl.data").joinpath("quickstart_seeds.jsonl")
    seeds = [json.loads(line)["instruction"] for line in seeds_file.read_text().splitlines() if line.strip()]
    names = build_operation_library().names + ["stop"]
    return seeds + [format_state(seed, names[: i % len(names)]) for i, seed in enumerate(seeds)]


def build_tiny_policy_backbone(output_dir: str, vocab_size: int = 5000) -> str:
    """Writes a 2-layer, 32-wide BERT and its word-level tokenizer to `output_dir` and returns the folder."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special_tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # Word level, with room for every word of the corpus: the vocabulary is then the same set in every process
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False)
    tokenizer.train_from_iterator(_training_corpus(), trainer=trainer)
    # The trainer numbers tokens in hash order among equal counts: renumber them sorted, so that every process builds
    # the same tokenizer (and so the same model and the same training run)
    special_ids = {token: i for i, token in enumerate(special_tokens)}
    others = sorted(token for token in tokenizer.get_vocab() if token not in special_ids)
    vocab = {**special_ids, **{token: len(special_ids) + i for i, token in enumerate(others)}}
    tokenizer.model = models.WordLevel(vocab=vocab, unk_token="[UNK]")
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(output_dir)
    fast_tokenizer.save_pretrained(output_dir)
    return output_dir
