import json

import pytest

from ppo.lab.scaling import accuracy_at_k, main

RECORDS = [
    {"gold": 1.0, "correct": True, "sample_answers": [2.0, 1.0, 1.0, None], "scores_critic": [0.9, 0.1, 0.2, 5.0]},
    {"gold": 3.0, "correct": False, "sample_answers": [3.0, 4.0, 4.0, 4.0], "scores_critic": [0.0, 1.0, 0.5, 0.2]},
]


def test_every_k_is_read_from_the_first_k_samples():
    curves = accuracy_at_k(RECORDS, [1, 2, 4])
    assert curves == {
        "top-1": [50.0, 50.0, 50.0],  # the greedy answer, the same at every k
        "vote": [50.0, 50.0, 50.0],  # k = 2: ties go to the first answer (2 and 3); k = 4: 1 and 4 win
        "rerank_critic": [50.0, 0.0, 0.0],  # the unanswered fourth sample's 5.0 is passed over
        "pass": [50.0, 100.0, 100.0],
    }


def test_a_k_beyond_the_samples_kept_is_an_error():
    with pytest.raises(ValueError, match="k = 8 needs 8 samples per question; the predictions keep 4"):
        accuracy_at_k(RECORDS, [1, 8])


def test_the_command_writes_the_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "reft"
    folder.mkdir()
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    main([str(folder / "predictions.jsonl"), "--ks", "1,2", "--out", str(tmp_path / "scaling.png")])
    assert (tmp_path / "scaling.png").stat().st_size > 0 and '"pass": [50.0, 100.0]' in capsys.readouterr().out


def test_a_method_keeps_its_colour_in_every_panel(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import ppo.lab.scaling as scaling
    from ppo.lab.scaling import plot_scaling

    kept = {}
    monkeypatch.setattr(scaling, "save", lambda fig, path: kept.setdefault("fig", fig) and path)
    line = [10.0, 20.0]
    curves = {"warm-up": {m: line for m in ("top-1", "vote", "rerank_verifier", "pass")},  # no critic to rerank by
              "reft": {m: line for m in ("top-1", "vote", "rerank_critic", "rerank_verifier", "pass")}}  # fmt: skip
    plot_scaling(curves, [1, 2], tmp_path / "scaling.png")
    colours = [{ln.get_label(): ln.get_color() for ln in ax.get_lines()} for ax in kept["fig"].axes]
    assert all(colours[0][m] == colours[1][m] for m in colours[0]) and len(set(colours[1].values())) == 5
    assert all(ax.get_legend() is not None for ax in kept["fig"].axes)


def test_without_matplotlib_the_command_prints_the_curves_and_a_one_line_notice(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    main([str(tmp_path / "predictions.jsonl"), "--ks", "1,2", "--out", str(tmp_path / "scaling.png")])
    out = capsys.readouterr().out
    assert '"pass": [50.0, 100.0]' in out and "[scaling] matplotlib is not installed (pip install -e .[plots])" in out
    assert not (tmp_path / "scaling.png").exists()
