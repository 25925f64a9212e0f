"""
The operation environment as a TRL `GRPOTrainer(environment_factory=...)` environment: the operations are tools that an
LLM (the *instructor*) calls. Training it is [`~instrl_trl.trainer.instructor.InstructorTrainer`]'s job, playing it
`instrl_trl.policies.instructor`'s; this package imports neither, so that playing an instructor does not import TRL's
`GRPOTrainer`.
"""

from .environment import (
    DEFAULT_TASK_PROMPT,
    INSTRUCTOR_FILE,
    InstructionEnvironment,
    InstructionEnvironmentFactory,
    environment_class,
)
from .prefetch import ToolCallPrefetcher


__all__ = [
    "DEFAULT_TASK_PROMPT",
    "INSTRUCTOR_FILE",
    "InstructionEnvironment",
    "InstructionEnvironmentFactory",
    "ToolCallPrefetcher",
    "environment_class",
]
