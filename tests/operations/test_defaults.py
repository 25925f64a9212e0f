from instrl_trl.operations import DEFAULT_OPERATIONS, default_operations, load_template


EXPECTED = ["add_constraints", "deepening", "concretizing", "increase_reasoning_steps", "complicate_input", "breadth"]


def test_default_names_order():
    assert DEFAULT_OPERATIONS.names == EXPECTED
    assert default_operations().names == EXPECTED
    for operation in DEFAULT_OPERATIONS.values():
        assert operation.description and operation.backend_options == {}


def test_default_templates_are_packaged_and_render():
    for name, operation in DEFAULT_OPERATIONS.items():
        assert operation.prompt_template == load_template(name)
        prompt = operation.render_prompt("Name three rivers.")
        assert "Name three rivers." in prompt
        assert "{instruction}" not in prompt
        assert "#Given Prompt#:" in prompt
    assert DEFAULT_OPERATIONS["breadth"].prompt_template.rstrip().endswith("#Created Prompt#:")
    assert DEFAULT_OPERATIONS["deepening"].prompt_template.rstrip().endswith("#Rewritten Prompt#:")
