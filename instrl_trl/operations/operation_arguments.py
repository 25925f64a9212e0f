from dataclasses import dataclass, field


@dataclass
class OperationArguments:
    r"""
    The operations an episode chooses from, and how many it applies: one argument group of the PPO trainer's and the
    instructor's configs.

    Parameters:
        operations (`list[str]`, *optional*):
            Names of the operations to choose from (for the PPO policy, in label order; for the instructor, one tool
            each). Defaults to every operation of the library (the six operations of the method plus those of
            `operations_file`).
        operations_file (`str`, *optional*):
            A YAML file or a `module:attribute` path with user operations; they are added to the defaults, or replace
            those with the same name.
        max_operations (`int`, *optional*, defaults to `6`):
            Number of operations applied to each seed instruction in one episode, as in the paper.
    """

    operations: list[str] | None = field(
        default=None,
        metadata={"help": "Names of the operations to choose from (the policy's label order). Defaults to all."},
    )
    operations_file: str | None = field(
        default=None,
        metadata={"help": "YAML file or `module:attribute` path with user operations, added to the defaults."},
    )
    max_operations: int = field(
        default=6, metadata={"help": "Number of operations applied to each seed instruction in one episode."}
    )
