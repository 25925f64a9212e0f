"""`instrl-trl <stage> --config recipe.yaml [--key value ...]`: one entry point for every stage."""

import importlib
import sys


# stage name -> module exposing `make_parser(prog)` and `main(*dataclasses)`
STAGES = {
    "train-policy": "instrl_trl.cli.train_policy",
    "train-instructor": "instrl_trl.cli.train_instructor",
    "generate": "instrl_trl.cli.generate",
    "sft": "instrl_trl.cli.sft",
    "evaluate": "instrl_trl.cli.evaluate",
    "pipeline": "instrl_trl.cli.pipeline",
}


def _usage() -> str:
    return "usage: instrl-trl <stage> --config RECIPE.yaml [--key value ...]\n\nstages:\n" + "\n".join(
        f"  {stage:<17} {importlib.import_module(module).__doc__.strip().splitlines()[0]}"
        for stage, module in STAGES.items()
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())  # noqa: T201
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"instrl-trl: unknown stage {stage!r}; valid stages: {', '.join(STAGES)}.", file=sys.stderr)  # noqa: T201
        return 2
    module = importlib.import_module(STAGES[stage])
    parser = module.make_parser(prog=f"instrl-trl {stage}")
    module.main(*parser.parse_args_and_config(rest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
