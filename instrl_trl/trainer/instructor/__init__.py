"""
The instructor: an LLM trained with TRL's `GRPOTrainer` to evolve instructions by calling one tool per operation of
the library, in the same environment ([`~instrl_trl.tool_environment.InstructionEnvironment`]), with the same rewards
and query accounting as the PPO operation policy. Playing a trained instructor is in `instrl_trl.policies.instructor`.
"""

from .instructor_config import InstructorConfig
from .instructor_trainer import InstructorTrainer
from .warm_start import default_instructor


__all__ = ["InstructorConfig", "InstructorTrainer", "default_instructor"]
