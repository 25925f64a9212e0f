import random

import pytest

from instrl_trl.backends import RULES, RewriteRequest, RulesExpert, RulesReviewer, RulesRewriter
from instrl_trl.backends.roles import build_role, parse_role_spec
from instrl_trl.backends.rules import (
    BREADTH_TEMPLATES,
    DEPTH_CLAUSES,
    GENERAL_TERMS,
    INPUT_BLOCKS,
    LENGTH_LIMIT,
    MAX_CONSTRAINTS,
    REASONING_CLAUSES,
    find_general_term,
    is_inquiry_instruction,
    read_features,
)
from instrl_trl.constraints import Constraint
from instrl_trl.elimination import elimination_reason
from instrl_trl.operations import DEFAULT_OPERATIONS, Operation, load_operations


OPS = DEFAULT_OPERATIONS

# Alpaca-like seeds: some ask for reasoning, some name a general term, most are plain.
SEEDS = [
    "Give three tips for staying healthy.",
    "Describe the structure of an atom.",
    "How can we reduce air pollution?",
    "Write a poem about the ocean.",
    "Explain why the sky is blue.",
    "Calculate the area of a circle with a radius of 4 cm.",
    "Suggest a name for a new coffee shop.",
    "Write a short story about a robot learning to paint.",
    "Compare cats and dogs as pets.",
    "List five uses for a paper clip.",
    "Plan a three-day trip to a city you have never visited.",
    "Summarize the plot of a book you enjoyed.",
    "Translate 'good morning' into French.",
    "Describe a typical day for a person who works from home.",
    "Create a workout routine for beginners.",
    "Write an email asking a company for a refund.",
    "Generate a list of healthy snacks for children.",
    "What is the capital of Australia?",
    "Solve the equation 3x + 5 = 20.",
    "Write a product description for a product that helps people sleep.",
    "Explain how photosynthesis works.",
    "Give an example of a renewable energy source.",
    "Write a haiku about autumn leaves.",
    "Describe the benefits of learning a language.",
    "Estimate how many piano tuners work in Chicago.",
    "Write a tweet announcing a new app.",
    "Name three famous painters from the Renaissance.",
    "How much water should an adult drink each day?",
    "Design a logo concept for a business that sells bicycles.",
    "Explain the difference between weather and climate.",
    "Write a dialogue between a teacher and students about homework.",
    "Classify the following animals as mammals or reptiles: snake, whale, lizard.",
    "Create a recipe for a vegetarian lasagna.",
    "Describe the water cycle.",
    "Write a cover letter for a job at a hospital.",
    "Analyze the causes of the French Revolution.",
    "Suggest ways to improve team communication.",
    "Write a motivational quote about perseverance.",
    "Describe the rules of chess in simple terms.",
    "Decide whether to rent or buy a house and justify the choice.",
    "Write a review of a movie you watched recently.",
    "Give advice to people starting their first garden.",
    "Describe how a vaccine trains the immune system.",
    "Write a limerick about a cat.",
    "Propose a fundraising idea for a school library.",
    "Convert 100 degrees Fahrenheit to Celsius.",
    "Write instructions for brewing green tea.",
    "Describe a memorable sunset at the beach.",
    "Outline the main features of a smartphone.",
    "Brainstorm slogans for a campaign about recycling.",
]
NUM_STEPS = 6


def request(instruction, name, history=(), constraints=(), seed=0):
    return RewriteRequest(instruction, OPS[name], tuple(history), tuple(constraints), seed)


def apply(instruction, name, history=(), constraints=(), seed=0):
    # no slips: these tests check the rules themselves (slips have a test of their own)
    return RulesRewriter(slip_rate=0.0).rewrite([request(instruction, name, history, constraints, seed)])[0]


def gains(original, rewritten):
    return RulesReviewer().review([original], [rewritten])[0].information_gain


def test_add_constraints_carries_checkable_constraints():
    seed_text = "Write a poem about the ocean."
    first = apply(seed_text, "add_constraints", seed=3)
    assert len(first.constraints) == 1
    constraint = first.constraints[0]
    assert isinstance(constraint, Constraint) and constraint.instruction_id
    assert first.instruction == f"{seed_text} {constraint.description()}"
    assert gains(seed_text, first.instruction)
    # a task takes one constraint in this world: a second adds nothing
    second = apply(first.instruction, "add_constraints", ["add_constraints"], first.constraints, seed=3)
    assert MAX_CONSTRAINTS == 1
    assert second.instruction == first.instruction and second.constraints == first.constraints
    assert not gains(first.instruction, second.instruction)


def test_add_constraints_only_on_tasks_and_when_one_fits(monkeypatch):
    for inquiry in ("What is the capital of Australia?", "Explain how tides work.", "Compare cats and dogs as pets."):
        assert apply(inquiry, "add_constraints").instruction == inquiry
    assert apply("Name a fruit.", "add_constraints").constraints
    # no constraint fits: unchanged, no gain
    monkeypatch.setattr("instrl_trl.backends.rules.strategies.sample_constraint", lambda existing, rng, families: None)
    unchanged = apply("Name a fruit.", "add_constraints")
    assert unchanged.instruction == "Name a fruit." and unchanged.constraints == ()


def test_add_constraints_draws_the_chosen_families():
    def added(rewriter, seed):
        return rewriter.rewrite([request("Write a poem about the ocean.", "add_constraints", seed=seed)])[0]

    chosen = build_role("rewriter", {"constraint_families": ["ifeval"], "slip_rate": 0.0})
    assert chosen.constraint_families == ("ifeval",)
    for seed in range(12):
        rewrite = added(chosen, seed)
        (constraint,) = rewrite.constraints
        assert constraint.family == "ifeval" and rewrite.instruction.endswith(constraint.description())
        assert added(RulesRewriter(slip_rate=0.0), seed) == rewrite  # `[ifeval]` is the default


def test_test_constraints_are_refused_for_training():
    # IFBench's test constraints would contaminate the benchmark: refused, alone or mixed, pointing to IFTrain's
    for families in (["ifbench"], ["ifeval", "ifbench"]):
        with pytest.raises(ValueError, match=r"`rewriter.constraint_families` names `ifbench`.*contaminates.*iftrain"):
            RulesRewriter(constraint_families=families)
        with pytest.raises(ValueError, match=r"`rewriter.constraint_families` names `ifbench`.*iftrain"):
            parse_role_spec("rewriter", {"constraint_families": families})


def test_constraint_families_setting_is_checked_before_any_query():
    with pytest.raises(ValueError, match=r"`rewriter.constraint_families` has unknown .*ifbnch.*valid values: ifeval"):
        parse_role_spec("rewriter", {"constraint_families": ["ifeval", "ifbnch"]})
    with pytest.raises(ValueError, match="`rewriter.constraint_families` must be a non-empty list"):
        RulesRewriter(constraint_families=[])
    with pytest.raises(ValueError, match="`reviewer.constraint_families`: only the rewriter draws constraints"):
        parse_role_spec("reviewer", {"constraint_families": ["ifeval"]})
    # an LLM rewriter reads it too, and checks it before any model is built
    with pytest.raises(ValueError, match=r"`rewriter.constraint_families` has unknown"):
        build_role("rewriter", {"backend": "transformers", "model": "none", "constraint_families": ["ifbnch"]})


def test_constraint_check_on_handwritten_responses():
    title = Constraint("detectable_format:title")
    no_comma = Constraint("punctuation:no_comma")
    rewrite = apply("Write a poem about the ocean.", "add_constraints", constraints=[title])
    assert rewrite.constraints[0] == title
    assert title.check("<<Sea Song>>\nWaves roll in") and not title.check("Sea Song\nWaves roll in")
    assert no_comma.check("<<Sea Song>> waves roll in") and not no_comma.check("Waves, roll, in")


def test_deepening_once():
    seed_text = "Describe the water cycle."
    rewrite = apply(seed_text, "deepening")
    clause = rewrite.instruction[len(seed_text) + 1 :]
    assert clause in DEPTH_CLAUSES
    assert gains(seed_text, rewrite.instruction)
    again = apply(rewrite.instruction, "deepening", ["deepening"])
    assert again.instruction == rewrite.instruction
    assert not gains(rewrite.instruction, again.instruction)


def test_deepening_only_on_inquiries():
    for creative in ("Write a poem about the ocean.", "Write a limerick about a cat."):
        assert not is_inquiry_instruction(creative)
        assert apply(creative, "deepening").instruction == creative
    assert is_inquiry_instruction("What is the capital of Australia?")
    # a quoted question in an appended constraint does not make the instruction an inquiry
    assert not is_inquiry_instruction(
        "Write a poem. Finish your response with this exact phrase Any other questions?."
    )


def test_concretizing():
    rewrite = apply("Plan a three-day trip to a city you have never visited.", "concretizing")
    assert "a city" not in rewrite.instruction
    assert any(
        rewrite.instruction == f"Plan a three-day trip to {r} you have never visited." for r in GENERAL_TERMS["a city"]
    )
    assert gains("Plan a three-day trip to a city you have never visited.", rewrite.instruction)
    # case-insensitive, capitalization kept
    assert not apply("People love music.", "concretizing").instruction.startswith("People")
    assert apply("People love music.", "concretizing").instruction[0].isupper()
    # no general term: unchanged, no gain
    seed_text = "Describe the structure of an atom."
    assert apply(seed_text, "concretizing").instruction == seed_text
    assert not gains(seed_text, seed_text)


def test_concretizing_replacements_are_specific():
    for term, replacements in GENERAL_TERMS.items():
        for replacement in replacements:
            assert find_general_term(replacement) is None, replacement
            assert gains(f"Tell me about {term}.", f"Tell me about {replacement}."), replacement


def test_increase_reasoning_steps():
    seed_text = "Calculate the area of a circle with a radius of 4 cm."
    rewrite = apply(seed_text, "increase_reasoning_steps")
    assert rewrite.instruction[len(seed_text) + 1 :] in REASONING_CLAUSES
    assert gains(seed_text, rewrite.instruction)
    assert apply(rewrite.instruction, "increase_reasoning_steps", ["increase_reasoning_steps"]).instruction == (
        rewrite.instruction
    )
    assert apply("Write a haiku about autumn leaves.", "increase_reasoning_steps").instruction == (
        "Write a haiku about autumn leaves."
    )


def test_banks_do_not_trigger_other_rules():
    # an appended clause or input block adds no general term and changes no other feature than its own
    banks = {
        "deepened": DEPTH_CLAUSES,
        "reasoning_added": REASONING_CLAUSES,
        "input_added": [block for blocks in INPUT_BLOCKS.values() for block in blocks],
    }
    for text in SEEDS:
        before = read_features(text)
        for flag, bank in banks.items():
            for clause in bank:
                after = read_features(f"{text} {clause}")
                assert getattr(after, flag) and find_general_term(clause) is None, clause
                assert (after.inquiry, after.general_term, after.reasoning, after.material) == (
                    before.inquiry, before.general_term, before.reasoning, before.material
                ), (text, clause)  # fmt: skip


def applicable(instruction, constraints=()):
    """The operations that add information to `instruction` (the rules of the package docstring)."""
    return {
        name
        for name in OPS.names
        if name != "breadth" and gains(instruction, apply(instruction, name, constraints=constraints).instruction)
    }


def test_features_read_unseen_instructions():
    # surface features that any instruction has, so the rules carry over to instructions the engine never saw
    assert applicable("Why do cats purr when they are content?") == {"deepening"}
    assert applicable("Draft a welcome speech for a company retreat.") == {"add_constraints", "concretizing"}
    assert applicable("Estimate how many litres of paint a school needs.") == {
        "add_constraints", "concretizing", "increase_reasoning_steps"
    }  # fmt: skip
    assert applicable("Translate this paragraph into plain English.") == {"add_constraints", "complicate_input"}
    assert applicable("How should a person plan a weekly budget for groceries?") == {
        "deepening", "concretizing", "increase_reasoning_steps"
    }  # fmt: skip


def test_breadth_templates_differ_in_what_comes_next():
    # the comment above each template names what can be added to it; together they leave no operation that always
    # helps after breadth, so what to do next must be read from the new instruction
    after_breadth = [applicable(template.format(topic="urban beekeeping")) for template in BREADTH_TEMPLATES]
    assert after_breadth == [
        {"add_constraints", "concretizing"},
        {"deepening"},
        {"deepening", "concretizing"},
        {"add_constraints", "complicate_input"},
        {"deepening", "increase_reasoning_steps"},
        {"add_constraints", "increase_reasoning_steps"},
    ]
    assert not set.intersection(*after_breadth)


def test_complicate_input_once_and_by_topic():
    code_seed = "Write a Python function that sorts a list."
    rewrite = apply(code_seed, "complicate_input")
    assert rewrite.instruction.startswith(code_seed + "\n\n") and "```" in rewrite.instruction
    assert gains(code_seed, rewrite.instruction)
    again = apply(rewrite.instruction, "complicate_input", ["complicate_input"])
    assert again.instruction == rewrite.instruction
    assert not gains(rewrite.instruction, again.instruction)


def test_breadth():
    seed_text = "Write a poem about the ocean."
    fresh = apply(seed_text, "breadth", constraints=[Constraint("detectable_format:title")])
    assert "ocean" in fresh.instruction and fresh.instruction != seed_text
    assert fresh.constraints == ()  # a new task carries none of the old constraints
    assert elimination_reason(seed_text, fresh.instruction) is None and gains(seed_text, fresh.instruction)
    evolved = apply(seed_text, "breadth", history=["deepening"])
    assert evolved.instruction.startswith("#Created Prompt#:")
    assert elimination_reason(seed_text, evolved.instruction) == "template_copy"


def test_length_limit_refusal():
    long_text = "Describe the water cycle " + "in great detail " * 40
    assert len(long_text.split()) > LENGTH_LIMIT
    for name in OPS:
        rewrite = apply(long_text, name)
        assert elimination_reason(long_text, rewrite.instruction) == "refusal"


def test_slips_are_seeded_and_a_retry_may_succeed():
    rewriter = RulesRewriter()  # the default slip rate
    requests = [request("Write a poem about the ocean.", "add_constraints", seed=seed) for seed in range(200)]
    slipped = [r.instruction == "Write a poem about the ocean." for r in rewriter.rewrite(requests)]
    assert 10 <= sum(slipped) <= 30  # about 10 % of 200
    assert slipped == [r.instruction == "Write a poem about the ocean." for r in RulesRewriter().rewrite(requests)]
    assert not any(
        r.instruction == "Write a poem about the ocean." for r in RulesRewriter(slip_rate=0.0).rewrite(requests)
    )
    # the same operation at a later step draws again
    first_slip = slipped.index(True)
    retry = request("Write a poem about the ocean.", "add_constraints", ["deepening"], seed=first_slip)
    assert rewriter.rewrite([retry])[0].constraints
    assert build_role("rewriter", {"slip_rate": 0.0}).slip_rate == 0.0
    with pytest.raises(ValueError, match=r"`rewriter.slip_rate` must be in \[0, 1\)"):
        RulesRewriter(slip_rate=1.0)
    with pytest.raises(ValueError, match="`reviewer.slip_rate`"):
        build_role("reviewer", {"slip_rate": 0.0})


def test_determinism_across_instances():
    requests = [request(text, name, seed=seed) for seed, text in enumerate(SEEDS[:10]) for name in OPS]
    first = RulesRewriter().rewrite(requests)
    second = RulesRewriter().rewrite(requests)
    assert first == second
    # the seed matters
    outputs = {apply("Write a poem about the ocean.", "add_constraints", seed=s).instruction for s in range(10)}
    assert len(outputs) > 1


def rules_operation(name, **options):
    return Operation(name, "d", "{instruction}", backend_options={"rules": options})


def test_check_operations_errors():
    rewriter = RulesRewriter()
    rewriter.check_operations(OPS)
    llm_only = Operation("poetic", "d", "Make it poetic: {instruction}")
    with pytest.raises(ValueError, match="'poetic'.*no strategy 'poetic'.*Valid strategies: add_constraints"):
        rewriter.check_operations([llm_only])
    with pytest.raises(ValueError, match="'poetic'.*'magic'.*`backend_options.rules.strategy`"):
        rewriter.check_operations([rules_operation("poetic", strategy="magic")])
    with pytest.raises(ValueError, match="'poetic'.*`backend_options.rules.texts` is empty"):
        rewriter.check_operations([rules_operation("poetic", strategy="append_clause")])
    with pytest.raises(ValueError, match=r"'poetic'.*`backend_options.rules.texts` must be a list"):
        rewriter.check_operations([rules_operation("poetic", strategy="append_clause", texts="one clause")])
    with pytest.raises(ValueError, match=r"'poetic'.*`backend_options.rules` has unknown key\(s\) \['rule'\]"):
        rewriter.check_operations([rules_operation("poetic", rule="append_clause")])
    with pytest.raises(ValueError, match="'poetic'"):
        rewriter.rewrite([RewriteRequest("Name a fruit.", llm_only)])


def test_yaml_rules_errors_name_file_operation_key(tmp_path):
    # Only the rules package validates its settings; its errors still name the file, the operation and the key.
    path = tmp_path / "ops.yaml"
    path.write_text(
        "- name: poetic\n  description: d\n  prompt_template: '{instruction}'\n"
        "  backend_options:\n    rules: {strategy: magic}\n"
    )
    library = load_operations(path)
    with pytest.raises(ValueError, match="'magic'") as error:
        RulesRewriter().check_operations(library)
    assert str(error.value).startswith(f"{path}: operation 'poetic': ")
    assert "`backend_options.rules.strategy`" in str(error.value)


def test_append_clause_once():
    operation = rules_operation("add_humor", strategy="append_clause", texts=["Keep it light and playful."])
    rewriter = RulesRewriter(slip_rate=0.0)
    rewrite = rewriter.rewrite([RewriteRequest("Name a fruit.", operation)])[0]
    assert rewrite.instruction == "Name a fruit. Keep it light and playful."
    again = rewriter.rewrite([RewriteRequest(rewrite.instruction, operation, ("add_humor",))])[0]
    assert again.instruction == rewrite.instruction
    assert set(RULES) >= {*OPS.names, "append_clause"}


def test_reviewer_verdicts():
    reviews = RulesReviewer().review(
        ["Name a fruit.", "Name a fruit.", "Name a fruit.", "Name a fruit."],
        ["Name a fruit.", "Name a tropical fruit.", "Name a tropical fruit from Brazil.", "name a FRUIT!"],
    )
    assert [r.verdict for r in reviews] == ["Equal", "Equal", "Not Equal", "Equal"]
    assert [r.information_gain for r in reviews] == [False, False, True, False]
    assert RulesReviewer.model_name == RulesRewriter.model_name == RulesExpert.model_name == "rules"


def test_expert_is_deterministic():
    instructions = ["Write a poem about the ocean.", "Describe the water cycle."]
    first = RulesExpert().respond(instructions)
    assert first == RulesExpert().respond(instructions)
    assert len(first) == 2 and "ocean" in first[0].text
    # Words count as tokens offline: the instruction in, the answer out
    assert first[0].usage.prompt_tokens == 6 and first[0].usage.completion_tokens == len(first[0].text.split())


def uniform_policy(instruction, history, constraints, step, rng):
    return rng.choice(OPS.names)


def oracle_policy(instruction, history, constraints, step, rng):
    """Reads the state: breadth on a seed with little to add, then what the text allows, the long input last."""
    features = read_features(instruction)
    useful = [
        name
        for name, helps in (
            ("add_constraints", not features.inquiry and not constraints),
            ("deepening", features.inquiry and not features.deepened),
            ("concretizing", features.general_term),
            ("increase_reasoning_steps", features.reasoning and not features.reasoning_added),
            ("complicate_input", features.material and not features.input_added),
        )
        if helps
    ]
    if not history and len(useful) < 3:
        return "breadth"
    return useful[0] if useful else None


def gain_fraction(policy, policy_seed=0):
    """
    Runs one episode per seed as `InstructionEnv` does (every action enters the history, an eliminated rewrite ends
    the episode); returns the fraction of rewriter queries that pass elimination and gain information.
    """
    rewriter, rng = RulesRewriter(), random.Random(policy_seed)
    num_gains = num_queries = 0
    for seed, instruction in enumerate(SEEDS):
        history, constraints = (), ()
        for step in range(NUM_STEPS):
            name = policy(instruction, history, constraints, step, rng)
            if name is None:
                break
            rewrite = rewriter.rewrite([request(instruction, name, history, constraints, seed)])[0]
            num_queries += 1
            history = (*history, name)
            if elimination_reason(instruction, rewrite.instruction) is not None:
                break
            if gains(instruction, rewrite.instruction):
                num_gains += 1
                instruction, constraints = rewrite.instruction, rewrite.constraints
    return num_gains / num_queries


def test_state_decides_which_operation_helps():
    # The uniform-random baseline (Evol-Instruct) wastes most of its queries; a policy that reads the state wastes
    # few (its slips). This is what makes the policy's job learnable on the rules engine.
    uniform = [gain_fraction(uniform_policy, policy_seed) for policy_seed in range(5)]
    oracle = gain_fraction(oracle_policy)
    assert max(uniform) < 0.4, uniform
    assert oracle > 0.8, oracle
