from instrl_trl.hub.plots import pyplot


def test_pyplot_draws_to_a_file_without_a_display(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    plt = pyplot()
    assert plt.get_backend().lower() == "agg"
    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    figure.savefig(tmp_path / "plot.png")
    plt.close(figure)
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
