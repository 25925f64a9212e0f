from .defaults import DEFAULT_OPERATION_NAMES, DEFAULT_OPERATIONS, default_operations, load_template
from .loading import build_operation_library, load_operations
from .operation import INSTRUCTION_PLACEHOLDER, STOP_ACTION, Operation, OperationLibrary


__all__ = [
    "DEFAULT_OPERATIONS",
    "DEFAULT_OPERATION_NAMES",
    "INSTRUCTION_PLACEHOLDER",
    "STOP_ACTION",
    "Operation",
    "OperationLibrary",
    "build_operation_library",
    "default_operations",
    "load_operations",
    "load_template",
]
