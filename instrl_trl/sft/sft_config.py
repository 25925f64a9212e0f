from dataclasses import dataclass, field

from ..data.loading import DatasetArguments
from ..runs.folder import RunFolderArguments


@dataclass
class SFTScriptArguments(DatasetArguments, RunFolderArguments):
    r"""
    Script arguments of the `sft` stage, next to TRL's [`~trl.SFTConfig`] and [`~trl.ModelConfig`]: the instruction
    dataset (the fields of [`~instrl_trl.data.loading.DatasetArguments`]; `dataset_name` is required here, e.g. the
    `data/` folder of an `instrl-trl generate` run or its Hub id), what to do with an earlier run in `output_dir`
    (`overwrite_output_dir`, see [`~instrl_trl.runs.folder.RunFolderArguments`]) and what the model card records
    about it.

    Parameters:
        messages_column (`str`, *optional*, defaults to `"messages"`):
            Column holding each row's conversation, a list of `{"role": ..., "content": ...}` dicts. It is checked
            before the model is loaded.
        hub_dataset_id (`str`, *optional*):
            Hub id of the dataset, for the model card's link when `dataset_name` is a local folder. Defaults to
            `dataset_name` when that is a Hub id.
        policy_id (`str`, *optional*):
            Hub id of the operation policy that generated the dataset, for the model card. Defaults to the one named
            in the dataset's card, if any.
    """

    messages_column: str = field(
        default="messages",
        metadata={"help": "Column holding each row's conversation: a list of {role, content} dicts."},
    )
    hub_dataset_id: str | None = field(
        default=None,
        metadata={"help": "Hub id of the dataset, for the model card when `dataset_name` is a local folder."},
    )
    policy_id: str | None = field(
        default=None,
        metadata={"help": "Hub id of the operation policy behind the dataset. Defaults to the dataset card's."},
    )
