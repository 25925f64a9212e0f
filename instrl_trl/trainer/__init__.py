from .instruction_generation_config import InstructionGenerationConfig
from .instruction_generation_trainer import InstructionGenerationTrainer


__all__ = ["InstructionGenerationConfig", "InstructionGenerationTrainer"]
