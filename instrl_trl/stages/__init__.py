"""
The stages, one module each (`train_policy`, `train_instructor`, `sft`, `evaluate`, and `pipeline`, which runs the
others in order; `generate` lives in `instrl_trl.generation.builder`): each claims its output folder, checks its inputs
before anything loads, runs, and writes its results. `instrl_trl.cli` parses a recipe and calls one of them.
"""
