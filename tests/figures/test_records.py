"""Reading run records for the figures, and the reports on bad input: missing runs, runs of mixed
configurations at one point, a figure with no data, W&B without a key. Synthetic records, no
sampling."""

import json
from pathlib import Path

import pytest

from unmask.cli.figures import main
from unmask.figures import FIGURES
from unmask.figures.records import FigureError, check_runs, load_runs, load_wandb


def write_run(
    folder: Path, *, model="mnist", sampler="moment", alpha=4.5, steps=8, seed=0, n=64, preset=None, fid=150.0
):
    """A results.json as unmask-eval writes it (only the keys the figures read), in a Hydra job folder."""
    config = {
        "model": {"name": model},
        "sampler": {
            "name": sampler,
            "alpha": alpha,
            "steps": steps,
            "substeps": 1,
            "token_temperature": None,
        },
        "seed": seed,
        "num_samples": n,
    }
    if preset:
        config["figure"] = {"preset": preset}
    metrics = (
        {"fid_mnist": fid, "fid_mnist_data_same_n": 90.0}
        if model == "mnist"
        else {"gen_ppl": 900.0, "sample_entropy_bits": 4.1}
    )
    record = {
        "status": "complete",
        "config": config,
        "metrics": metrics,
        "num_samples": n,
        "cost": {"nfe": steps, "forward_equivalents": steps, "sampling_seconds": 1.0},
    }
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    (folder / ".hydra" / "config.yaml").write_text("{}\n")
    (folder / "results.json").write_text(json.dumps(record))
    return folder / "results.json"


def test_runs_are_read_from_nested_sweep_folders(tmp_path):
    for i, steps in enumerate((4, 8)):
        write_run(tmp_path / "sweep" / "mnist" / str(i), steps=steps)
    runs, skipped = load_runs([tmp_path / "sweep"])
    assert sorted(r.get("sampler.steps") for r in runs) == [4, 8] and not skipped
    assert runs[0].model == "mnist" and runs[0].label == "moment"


def test_a_job_folder_without_results_is_reported_with_its_path_unless_partial(tmp_path):
    write_run(tmp_path / "0")
    (tmp_path / "1" / ".hydra").mkdir(parents=True)
    (tmp_path / "1" / ".hydra" / "config.yaml").write_text("{}\n")
    with pytest.raises(FigureError, match="1 run\\(s\\) missing") as err:
        load_runs([tmp_path])
    assert str(tmp_path / "1") in err.value.paths[0]
    runs, skipped = load_runs([tmp_path], partial=True)
    assert len(runs) == 1 and len(skipped) == 1


def test_a_path_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(FigureError, match="do not exist") as err:
        load_runs([tmp_path / "nowhere"])
    assert err.value.paths == [str(tmp_path / "nowhere")]


def test_two_runs_at_one_point_are_mixed_configurations_naming_both_paths(tmp_path):
    a = write_run(tmp_path / "a" / "0", seed=0)
    b = write_run(tmp_path / "b" / "0", seed=1)
    runs, _ = load_runs([tmp_path])
    module = FIGURES["fig_maskgit_vs_moment"]
    with pytest.raises(FigureError, match="mixed configurations") as err:
        check_runs(module.select(runs), module.point)
    text = "\n".join(err.value.paths)
    assert str(a) in text and str(b) in text and "seed=" in text


def test_runs_of_one_model_with_different_sample_counts_are_mixed_configurations(tmp_path):
    write_run(tmp_path / "0", steps=4, n=64)
    write_run(tmp_path / "1", steps=8, n=128)
    runs, _ = load_runs([tmp_path])
    module = FIGURES["fig_maskgit_vs_moment"]
    with pytest.raises(FigureError, match="differ in num_samples"):
        check_runs(module.select(runs), module.point)


def test_cli_reports_mixed_runs_with_status_2_and_the_paths(tmp_path, capsys):
    a = write_run(tmp_path / "a" / "0", seed=0)
    b = write_run(tmp_path / "b" / "0", seed=1)
    assert main(["fig_maskgit_vs_moment", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unmask-figures: error: mixed configurations")
    assert str(a) in err and str(b) in err


def test_a_figure_with_no_data_says_what_it_needs_and_how_to_produce_it(tmp_path, capsys):
    write_run(tmp_path / "0", sampler="confidence")  # not a run fig_maskgit_vs_moment can use
    assert main(["fig_maskgit_vs_moment", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "fig_maskgit_vs_moment: no data" in err
    assert "sampler=maskgit and sampler=moment" in err
    assert "unmask-figures fig_maskgit_vs_moment --run" in err
    assert "unmask-eval -m experiment=fig_maskgit_vs_moment" in err


def test_folders_alone_draw_the_figures_that_find_their_runs(tmp_path, capsys):
    for i, (sampler, steps) in enumerate([("maskgit", 4), ("maskgit", 8), ("moment", 4), ("moment", 8)]):
        write_run(tmp_path / "runs" / str(i), sampler=sampler, steps=steps, fid=100.0 + i)
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    for suffix in (".png", ".pdf", ".csv", ".md"):
        assert (out / f"fig_maskgit_vs_moment{suffix}").stat().st_size > 0
    assert not (out / "fig_hybrid.png").exists()
    lines = (out / "fig_maskgit_vs_moment.csv").read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("model,sampler,alpha,steps")
    assert "101.0 / 103.0" in (out / "fig_maskgit_vs_moment.md").read_text()  # maskgit / moment, steps 8


def test_a_run_of_another_figures_preset_is_not_used(tmp_path, capsys):
    write_run(tmp_path / "0", sampler="maskgit", preset="quickstart")
    assert main(["fig_maskgit_vs_moment", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no data" in capsys.readouterr().err


def test_overrides_without_run_are_refused_for_a_sweep_figure(tmp_path, capsys):
    assert main(["fig_hybrid", "num_samples=4", "--out", str(tmp_path)]) == 2
    assert "add --run" in capsys.readouterr().err


def test_wandb_project_without_an_api_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    with pytest.raises(FigureError, match="no W&B API key"):
        load_wandb("me/unmask")
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(FigureError, match="WANDB_MODE=offline"):
        load_wandb("me/unmask")


def test_every_figure_module_has_the_interface():
    for name, module in FIGURES.items():
        assert name == module.NAME
        for attribute in ("TITLE", "NEEDS", "RUNTIME", "COMPUTED", "select", "point", "collect", "draw"):
            assert hasattr(module, attribute), (name, attribute)
        if module.COMPUTED:
            assert hasattr(module, "compute")


def test_several_figures_without_runs_are_each_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no outputs/sweeps here
    assert main(["quickstart", "fig_hybrid", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "quickstart: no data" in err and "fig_hybrid: no data" in err
    assert "2 of 2 figures failed: quickstart, fig_hybrid" in err


def test_a_record_without_its_config_is_reported_not_dropped(tmp_path):
    write_run(tmp_path / "0")
    path = write_run(tmp_path / "1")
    path.write_text(json.dumps(json.loads(path.read_text()) | {"config": None}))
    with pytest.raises(FigureError, match="1 run\\(s\\) missing or unreadable") as err:
        load_runs([tmp_path])
    assert str(path) in err.value.paths[0] and "config is NoneType" in err.value.paths[0]
