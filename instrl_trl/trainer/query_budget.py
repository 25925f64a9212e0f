from accelerate.logging import get_logger
from transformers import TrainerCallback


logger = get_logger(__name__)


class QueryBudgetCallback(TrainerCallback):
    """
    Stops training at the end of the optimizer step during which `query_budget` was spent. `total_queries` is read
    from the trainer and is the same on every rank (it is all-reduced), so all ranks stop at the same step.
    """

    def __init__(self, trainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        budget = self.trainer.args.query_budget
        if budget is not None and self.trainer.total_queries >= budget:
            logger.info(f"Query budget spent ({self.trainer.total_queries} >= {budget}): stopping training.")
            control.should_training_stop = True
        return control
