"""
Training on an LLM backend that fails: stop while the checkpoints are still worth resuming, and never save a policy
whose rollouts were mostly failed queries as a finished run.
"""

from transformers import TrainerCallback

from ..backends.failure_budget import FailureBudget, RoleFailureError


# Above this fraction of failed queries over the run, the rewards the policy learnt from were mostly failures
MAX_RUN_FAILURE_FRACTION = 0.5


class FailureBudgetCallback(TrainerCallback):
    """
    Stops training with a [`~instrl_trl.backends.failure_budget.RoleFailureError`] at the end of an optimizer step
    whose rollouts had one role fail at least `max_failure_fraction` of its queries; the same rule for the PPO trainer
    and the GRPO instructor. Each process checks its own queries (a process that stops ends the launch).

    Args:
        usage (`Callable[[], Mapping[str, Mapping[str, float]]]`):
            The trainer's running totals per role (e.g. [`~instrl_trl.backends.accounting.QueryAccounting.details`]).
        roles (`dict`):
            The role objects by name, to name their endpoint in the error.
        max_failure_fraction (`float`):
            See [`~instrl_trl.backends.role_arguments.RoleArguments`].
    """

    def __init__(self, usage, roles: dict, max_failure_fraction: float):
        self.budget = FailureBudget(usage, roles, max_failure_fraction)

    def on_train_begin(self, args, state, control, **kwargs):
        self.budget.start_batch()  # after a resume has restored the counts of the earlier run

    def on_step_end(self, args, state, control, **kwargs):
        try:
            self.budget.check_batch()
        except RoleFailureError as error:
            raise RoleFailureError(
                f"Training stopped at step {state.global_step}: {error} The checkpoints already saved in "
                f"{args.output_dir} are kept; once the cause is fixed, run the same command again to resume from the "
                "last one."
            ) from None
        self.budget.start_batch()
        return control


def check_run_answered(usage_totals: dict, output_dir: str, what: str = "policy") -> None:
    """
    Raises a `RuntimeError` when more than half of a role's queries over the whole run failed (`usage_totals`: per
    role, at least `queries` and `failures`): the model then learnt from failures, and must not be saved as a
    finished run.
    """
    for role, usage in usage_totals.items():
        failed, queries = int(usage["failures"]), int(usage["queries"])
        if queries and failed > MAX_RUN_FAILURE_FRACTION * queries:
            raise RuntimeError(
                f"The {role} failed {failed} of its {queries} queries during training, so the {what} learnt mostly "
                f"from failed queries; it is not saved as a finished run in {output_dir} (the checkpoints stay "
                "there). Fix the backend (see the warnings above), then train again with `--overwrite_output_dir`."
            )
