from .card import LOSS_PLOT_FILE, build_sft_card, plot_loss_curve, policy_from_dataset_card, write_sft_card
from .sft_config import SFTScriptArguments


__all__ = [
    "LOSS_PLOT_FILE",
    "SFTScriptArguments",
    "build_sft_card",
    "plot_loss_curve",
    "policy_from_dataset_card",
    "write_sft_card",
]
