"""The dataset card and its plot, computed from the shards on disk."""

import os
from collections import Counter

import pyarrow.parquet as pq
from huggingface_hub import DatasetCard, DatasetCardData

from ..backends.accounting import RoleUsage, read_queries_file
from ..backends.costs import MIN_EVOLUTIONS, CostSummary
from ..constraints import family_of
from ..constraints.split import CARD_METADATA_KEY, constraint_id_counts, summarize_constraint_ids
from ..hub.cards import render_dataset_card
from ..hub.plots import pyplot
from .rows import COLUMN_DESCRIPTIONS
from .shards import list_shards


PLOT_FILE = "operation_mix.png"


def dataset_statistics(output_dir: str) -> dict:
    """
    Rows, seeds, operation shares, distinct operation sequences, depths (operations tried), evolutions (accepted),
    verification rate, and the constraint ids the rows carry with their families, read column by column from every
    shard.
    """
    operations, depths, evolutions, verified = Counter(), Counter(), Counter(), Counter()
    seeds, sequences, constraints = set(), set(), []
    num_rows = 0
    for shard in list_shards(output_dir):
        columns = ["operations", "depth", "evolutions", "verified", "seed_index", "constraints"]
        table = pq.read_table(shard, columns=columns)
        num_rows += table.num_rows
        constraints += table["constraints"].to_pylist()
        for sequence in table["operations"].to_pylist():
            operations.update(sequence)
            sequences.add(tuple(sequence))
        depths.update(table["depth"].to_pylist())
        evolutions.update(table["evolutions"].to_pylist())
        verified.update(table["verified"].to_pylist())
        seeds.update(table["seed_index"].to_pylist())
    num_operations = sum(operations.values())
    with_constraints = verified[True] + verified[False]
    return {
        "num_rows": num_rows,
        "num_seeds_with_rows": len(seeds),
        "num_operation_sequences": len(sequences),
        "operation_frequency": [
            {"name": name, "share": count / num_operations} for name, count in operations.most_common()
        ],
        "depth_histogram": [{"depth": depth, "count": depths[depth]} for depth in sorted(depths)],
        "evolutions_histogram": [{"evolutions": n, "count": evolutions[n]} for n in sorted(evolutions)],
        "verification": {
            "with_constraints": with_constraints,
            "rate": verified[True] / with_constraints if with_constraints else 0.0,
        },
        **summarize_constraint_ids(constraint_id_counts(constraints)),
    }


def plot_operation_mix(statistics: dict, path: str) -> None:
    plt = pyplot()

    rows = statistics["operation_frequency"]
    figure, axis = plt.subplots(figsize=(6, 3))
    axis.barh([row["name"] for row in rows][::-1], [100 * row["share"] for row in rows][::-1], color="#4c72b0")
    axis.set_xlabel("share of applied operations (%)")
    axis.set_title("Operation mix")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _usage(output_dir: str) -> dict[str, RoleUsage]:
    """Usage per role over every rank's `queries-rank*.json` (roles that spent no query are left out)."""
    totals: dict[str, RoleUsage] = {}
    for name in sorted(os.listdir(output_dir)):
        if name.startswith("queries-rank") and name.endswith(".json"):
            for role, usage in read_queries_file(os.path.join(output_dir, name)).items():
                totals[role] = totals.get(role, RoleUsage()) + usage
    return {role: usage for role, usage in totals.items() if usage.queries}


# The ratios a dataset card can give: a row is a kept instruction (with `keep_intermediate`, every accepted one)
_DATASET_RATIOS = (
    "queries_per_instruction",
    "queries_per_deep_instruction",
    "tokens_per_instruction",
    "tokens_per_deep_instruction",
)


def dataset_costs(statistics: dict, usage: dict[str, RoleUsage]) -> CostSummary:
    """
    What the dataset's rows cost: every query of every role (expert included) over the rows, and over the rows of at
    least `MIN_EVOLUTIONS` evolutions (see [`~instrl_trl.backends.costs.CostSummary`]). Evolutions that made no row
    are not on disk, so `queries_per_evolution` is not given (0 evolutions: `inf`).
    """
    return CostSummary(
        num_queries=sum(role_usage.queries for role_usage in usage.values()),
        num_evolutions=0,
        num_instructions=statistics["num_rows"],
        num_deep_instructions=sum(
            row["count"] for row in statistics["evolutions_histogram"] if row["evolutions"] >= MIN_EVOLUTIONS
        ),
        prompt_tokens={role: role_usage.prompt_tokens for role, role_usage in usage.items()},
        completion_tokens={role: role_usage.completion_tokens for role, role_usage in usage.items()},
    )


def write_dataset_card(
    output_dir: str,
    *,
    num_seeds: int,
    roles: dict[str, str],
    seeds_source: str | None,
    seeds_license: str | None,
    policy: str | None,
    dataset_id: str | None = None,
    policy_description: str | None = None,
) -> DatasetCard:
    """
    Renders `model_cards/dataset_card.md` from the shards into `output_dir/README.md`, with the plot beside it.
    `policy` is the policy's Hub id; without one, `policy_description` says what chose the operations.
    """
    statistics = dataset_statistics(output_dir)
    usage = _usage(output_dir)
    costs = dataset_costs(statistics, usage)
    if statistics["operation_frequency"]:
        plot_operation_mix(statistics, os.path.join(output_dir, PLOT_FILE))
    num_rows = statistics["num_rows"]
    size = "n<1K" if num_rows < 1000 else "1K<n<10K" if num_rows < 10_000 else "10K<n<100K"
    card_data = DatasetCardData(
        license=seeds_license,
        task_categories=["text-generation"],
        tags=["instrl-trl", "teams-rl", "synthetic", "instruction-tuning"],
        size_categories=[size],
        pretty_name=(dataset_id or os.path.basename(os.path.abspath(output_dir))).split("/")[-1],
        # Machine-readable, for the SFT card to carry on and `evaluate` to compare with a benchmark's ids
        **{CARD_METADATA_KEY: {"constraint_ids": statistics["constraint_ids"]}},
    )
    card = render_dataset_card(
        "dataset_card.md",
        card_data,
        pretty_name=card_data.pretty_name,
        dataset_id=dataset_id,
        seeds_source=seeds_source,
        seeds_license=seeds_license,
        policy=policy,
        policy_description=policy_description,
        roles=roles,
        num_seeds=num_seeds,
        queries={role: role_usage.queries for role, role_usage in usage.items()},
        tokens_per_role=costs.tokens_per_role(),
        cost_ratios=costs.card_ratios(_DATASET_RATIOS),
        plot_file=PLOT_FILE if statistics["operation_frequency"] else None,
        columns=COLUMN_DESCRIPTIONS,
        constraint_family_of={iid: family_of(iid) or "other" for iid in statistics["constraint_ids"]},
        **statistics,
    )
    card.save(os.path.join(output_dir, "README.md"))
    return card
