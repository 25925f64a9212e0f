"""
The six default operations of TeaMs-RL ([paper](https://huggingface.co/papers/2403.08694)), after Evol-Instruct's
in-depth and in-breadth evolving ([WizardLM](https://huggingface.co/papers/2304.12244)). The rewriter prompts are
written in our own words and kept in `templates/<name>.txt`.
"""

from importlib import resources

from .operation import Operation, OperationLibrary


DEFAULT_DESCRIPTIONS = {
    "add_constraints": "Add one more constraint or requirement the answer must satisfy.",
    "deepening": "Ask for the underlying reasons and principles, not only the surface facts.",
    "concretizing": "Replace a general concept with a more specific one.",
    "increase_reasoning_steps": "Ask explicitly for multiple-step reasoning on a reasoning task.",
    "complicate_input": "Add an input (table, JSON, code or passage) that the answer must use.",
    "breadth": "Write a new, rarer instruction in the same domain.",
}
DEFAULT_OPERATION_NAMES = tuple(DEFAULT_DESCRIPTIONS)


def load_template(name: str) -> str:
    """Returns the packaged rewriter prompt `templates/<name>.txt`."""
    return resources.files(__package__).joinpath("templates", f"{name}.txt").read_text(encoding="utf-8")


def default_operations() -> OperationLibrary:
    """
    Returns the six default operations, in a fixed order (the policy's label ids): `add_constraints`, `deepening`,
    `concretizing`, `increase_reasoning_steps`, `complicate_input`, `breadth`.
    """
    return OperationLibrary(
        Operation(name=name, description=description, prompt_template=load_template(name))
        for name, description in DEFAULT_DESCRIPTIONS.items()
    )


DEFAULT_OPERATIONS = default_operations()
