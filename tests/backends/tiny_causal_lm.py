"""The tests use the package's offline tiny chat model (`instrl_trl.models.tiny`)."""

from instrl_trl.models.tiny import build_tiny_causal_lm, training_corpus


__all__ = ["build_tiny_causal_lm", "training_corpus"]
