"""`instrl-trl <stage> --config recipe.yaml [--key value ...]`: one entry point for every stage."""

import importlib
import os
import sys


# A stage that cannot do its job raises one of these with a message naming the cause and the fix (a bad field, a
# failed role, a busy or reused output folder, a missing file). The user gets that message alone and exit status 1;
# `INSTRL_TRL_TRACEBACK=1` shows the traceback too. Anything else is a bug and keeps its traceback.
STAGE_ERRORS = (ValueError, RuntimeError, FileNotFoundError, PermissionError)
TRACEBACK_ENV = "INSTRL_TRL_TRACEBACK"

# stage name -> module exposing `make_parser(prog)` and `main(*dataclasses)`; `serve` takes no recipe, so its parser
# is a plain `argparse` one and its `main` takes the parsed namespace
STAGES = {
    "train-policy": "instrl_trl.cli.train_policy",
    "train-instructor": "instrl_trl.cli.train_instructor",
    "generate": "instrl_trl.cli.generate",
    "sft": "instrl_trl.cli.sft",
    "evaluate": "instrl_trl.cli.evaluate",
    "pipeline": "instrl_trl.cli.pipeline",
    "serve": "instrl_trl.cli.serve",
}


def _usage() -> str:
    return "usage: instrl-trl <stage> --config RECIPE.yaml [--key value ...]\n\nstages:\n" + "\n".join(
        f"  {stage:<17} {importlib.import_module(module).__doc__.strip().splitlines()[0]}"
        for stage, module in STAGES.items()
    )


def run_stage(stage: str, arguments: list[str]):
    """
    Parses `arguments` with `stage`'s own parser and runs it; returns what the stage returns. The one path of every
    stage, whether its command or the `pipeline` runs it.
    """
    module = importlib.import_module(STAGES[stage])
    parser = module.make_parser(prog=f"instrl-trl {stage}")
    if hasattr(parser, "parse_args_and_config"):
        return module.main(*parser.parse_args_and_config(arguments))
    return module.main(parser.parse_args(arguments))


def _leave_process_group() -> None:
    """
    Destroys the process group of a stage run under `accelerate launch` once it has done its job. Left to the
    interpreter's exit, Gloo's worker threads can outlive it and abort the process (SIGABRT, "terminate called
    without an active exception"): a run that succeeded would exit non-zero. Not after an error: the other ranks may
    still be in a collective, and destroying the group would hang them.
    """
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())  # noqa: T201
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"instrl-trl: unknown stage {stage!r}; valid stages: {', '.join(STAGES)}.", file=sys.stderr)  # noqa: T201
        return 2
    try:
        run_stage(stage, rest)
    except STAGE_ERRORS as error:
        if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
            raise
        print(f"instrl-trl {stage}: error: {error}", file=sys.stderr)  # noqa: T201
        return 1
    _leave_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
