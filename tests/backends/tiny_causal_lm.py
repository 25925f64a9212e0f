"""The tests use the package's offline tiny chat model (`instrl_trl.tiny_models`)."""

from instrl_trl.tiny_models import build_tiny_causal_lm, training_corpus


__all__ = ["build_tiny_causal_lm", "training_corpus"]
