from .card import LOSS_PLOT_FILE, build_sft_card, plot_loss_curve, policy_from_dataset_card, write_sft_card
from .run import DEFAULT_CHAT_TEMPLATE, check_messages, load_messages_dataset, run_sft
from .sft_config import SFTScriptArguments


__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "LOSS_PLOT_FILE",
    "SFTScriptArguments",
    "build_sft_card",
    "check_messages",
    "load_messages_dataset",
    "plot_loss_curve",
    "policy_from_dataset_card",
    "run_sft",
    "write_sft_card",
]
