"""
The instructor: an LLM trained with TRL's `GRPOTrainer` to evolve instructions by calling one tool per operation of
the library, in the same environment, with the same rewards and query accounting as the PPO operation policy.
"""

from .environment import InstructionEnvironment, InstructionEnvironmentFactory, environment_class
from .episodes import InstructorEpisode, choose_operations_with_instructor
from .instructor_config import InstructorConfig
from .instructor_trainer import InstructorTrainer
from .run import run_train_instructor
from .statistics import EpisodeRecord, InstructorStatistics
from .warm_start import default_instructor


__all__ = [
    "EpisodeRecord",
    "InstructionEnvironment",
    "InstructionEnvironmentFactory",
    "InstructorConfig",
    "InstructorEpisode",
    "InstructorStatistics",
    "InstructorTrainer",
    "choose_operations_with_instructor",
    "default_instructor",
    "environment_class",
    "run_train_instructor",
]
