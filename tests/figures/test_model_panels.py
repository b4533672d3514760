"""fig_model_panels pools each point over its seeds with the larger of two standard errors (the
runs' own, combined; the seeds' spread), claims an order only when it is resolved on the pooled
values, reports whether each resolved pair holds in every seed alone, and sets every method
against the model's own law and the data drawn with each seed. Runs built here, numbers chosen
so that each rule decides."""

from __future__ import annotations

import json
import math

import pytest
import torch

from hydra_cli import run_in_process
from unmask.cli import evaluate
from unmask.figures import FIGURES, fig_model_panels
from unmask.figures.common import pool
from unmask.figures.records import FigureError, Run, check_runs
from unmask.samplers.budget import spend_budget


def run(model: str, method: str, steps: int, seed: int, **metrics: float) -> Run:
    config = {"model": {"name": model}, "seed": seed, "budget": steps, "variant": method}
    config["figure"] = {"preset": "fig_model_panels"}
    return Run(f"{model}/{method}/{steps}/{seed}/results.json", config, metrics, {"nfe": steps}, 2000)


def test_a_point_is_the_mean_of_its_seeds_with_the_larger_standard_error():
    spread = pool([1.0, 2.0, 3.0], [0.1, 0.1, 0.1])
    assert spread["mean"] == 2.0
    assert spread["within"] == pytest.approx(math.sqrt(0.03) / 3)
    assert spread["seeds"] == pytest.approx(1 / math.sqrt(3))  # sd = 1
    assert spread["stderr"] == spread["seeds"] and spread["ratio"] == pytest.approx(100.0)
    tight = pool([2.0, 2.0, 2.0], [0.3, 0.3, 0.3])
    assert tight["seeds"] == 0 and tight["stderr"] == pytest.approx(0.3 / math.sqrt(3))
    single = pool([5.0, math.nan], [0.5, 0.5])
    assert single["mean"] == 5.0 and math.isnan(single["seeds"]) and single["stderr"] == 0.5


def test_claims_are_read_on_the_pooled_values_and_checked_in_every_seed():
    runs = []
    for seed, (a, b, c) in enumerate([(100.0, 110.0, 101.0), (100.0, 111.0, 99.0), (100.0, 109.0, 102.0)]):
        runs += [
            run("mnist", "a", 4, seed, fid_mnist=a, fid_mnist_stderr=1.0, fid_mnist_data_same_n=4.0 + seed),
            run("mnist", "b", 4, seed, fid_mnist=b, fid_mnist_stderr=1.0, fid_mnist_data_same_n=4.0 + seed),
            run("mnist", "c", 4, seed, fid_mnist=c, fid_mnist_stderr=1.0, fid_mnist_data_same_n=4.0 + seed),
        ]
    # c is not resolved from a: it is not claimed, although it is better than a in one seed
    runs += [
        run("mnist", "d", 4, seed, fid_mnist=v, fid_mnist_stderr=0.2) for seed, v in enumerate([102, 98, 106])
    ]
    runs += [run("mnist", "own_law", 49, s, fid_mnist=120.0, fid_mnist_stderr=1.0) for s in range(3)]
    check_runs(runs, fig_model_panels.point, fig_model_panels.SHARED)  # seeds differ: allowed
    per_run, pooled, resolved, own_law, data = fig_model_panels.collect(runs)
    assert len(per_run.rows) == 15
    b = next(r for r in pooled.rows if r["method"] == "b")
    assert b["fid"] == 110.0 and b["fid_stderr"] == pytest.approx(1 / math.sqrt(3))  # sd 1 = se 1
    d = next(r for r in pooled.rows if r["method"] == "d")
    assert d["fid_stderr"] == pytest.approx(4 / math.sqrt(3))  # the seeds' spread (sd 4) dominates
    (row,) = resolved.rows  # own law apart: one point, steps 4
    assert (row["best"], row["resolved_worse"]) == ("a", "b")
    assert set(row["not_resolved_from_best"].split(", ")) == {"c", "d"}
    assert row["order_in_every_seed"] == "yes (3 seeds)"
    verdicts = {r["method"]: r["verdict"] for r in own_law.rows}
    assert verdicts == {m: "below the own law" for m in "abcd"}
    (line,) = data.rows
    assert line["mean"] == 5.0 and line["seed_se"] == pytest.approx(1 / math.sqrt(3))
    assert line["per_seed"] == "seed 0: 4, seed 1: 5, seed 2: 6"


def test_a_resolved_pair_reversed_in_one_seed_is_named():
    values = {"a": [100.0, 100.0, 100.0], "b": [108.0, 108.0, 99.0]}  # b's mean 105, sd 5.2
    runs = [
        run("mnist", m, 8, seed, fid_mnist=v, fid_mnist_stderr=0.1)
        for m, vs in values.items()
        for seed, v in enumerate(vs)
    ]
    # resolved only if the seeds' spread is ignored: pooled se of b is 3.0, of a 0.06
    (row,) = fig_model_panels.collect(runs)[2].rows
    assert row["resolved_worse"] == "none" and row["not_resolved_from_best"] == "b"
    values["b"] = [108.0, 109.0, 99.5]
    runs = [
        run("mnist", m, 8, seed, fid_mnist=v, fid_mnist_stderr=0.1)
        for m, vs in values.items()
        for seed, v in enumerate(vs)
    ]
    runs += [
        run("mnist", m, 8, 3, fid_mnist=v, fid_mnist_stderr=0.1) for m, v in (("a", 100.0), ("b", 107.0))
    ]
    (row,) = fig_model_panels.collect(runs)[2].rows
    assert row["resolved_worse"] == "b"
    assert row["order_in_every_seed"] == "b worse than a in 3/4 seeds"


def test_degenerate_text_is_not_set_below_the_own_law():
    runs = [
        run(
            "shakespeare",
            "cold",
            4,
            0,
            gen_bits_per_char=1.0,
            gen_bits_per_char_stderr=0.01,
            sample_entropy_bits=2.0,
        ),
        run(
            "shakespeare",
            "warm",
            4,
            0,
            gen_bits_per_char=4.0,
            gen_bits_per_char_stderr=0.01,
            sample_entropy_bits=4.4,
        ),
        run("shakespeare", "own_law", 128, 0, gen_bits_per_char=3.0, gen_bits_per_char_stderr=0.01),
    ]
    own_law = fig_model_panels.collect(runs)[3]
    assert {r["method"]: r["verdict"] for r in own_law.rows} == {
        "cold": "degenerate (entropy < 3.5)",
        "warm": "above the own law",
    }


def test_two_runs_of_one_seed_at_one_point_are_still_refused():
    runs = [run("mnist", "a", 4, 0, fid_mnist=1.0), run("mnist", "a", 4, 0, fid_mnist=2.0)]
    with pytest.raises(FigureError, match="mixed configurations: 2 runs at 1 point"):
        check_runs(runs, fig_model_panels.point, fig_model_panels.SHARED)
    assert FIGURES["fig_model_panels"] is fig_model_panels


def test_a_budget_of_length_is_one_call_per_position():
    assert spend_budget("random", {}, "length", 49) == {"steps": 49}
    assert spend_budget("eb", {}, "length", 128) == {"max_steps": 128}
    with pytest.raises(
        ValueError, match=r"budget='len' must be an integer >= 1 \(denoiser calls\), or 'length'"
    ):
        spend_budget("random", {}, "len", 49)


def test_unmask_eval_with_a_budget_of_length_records_the_calls_it_spent(tmp_path, capsys, monkeypatch):
    overrides = ["sampler=random", "budget=length", "num_samples=4", "batch_size=4", "metrics.names=[]"]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 0, err
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    length = torch.load(tmp_path / "run" / "samples.pt").shape[1]
    assert result["config"]["budget"] == "length" and result["budget"] == length
    assert result["config"]["sampler"]["steps"] == length and result["cost"]["nfe"] == length
    assert Run("r", result["config"], payload=result).budget == length


def test_the_presets_further_sweeps_are_counted_with_their_own_overrides():
    from omegaconf import OmegaConf

    from unmask.figures.runner import also_sweeps, compose_preset, sweep_axes

    user = ["sampler=moment,random", "budget=2", "seed=0,1"]
    cfg = compose_preset("fig_model_panels", user)
    (also,) = also_sweeps(cfg)
    assert also == ["sampler=random", "budget=length", "variant=own_law"]
    # the further sweep's overrides come last and win, as in Hydra: 2 seeds of one run
    axes = sweep_axes(cfg, [*user, *also])
    assert (axes["sampler"], axes["budget"], axes["seed"]) == (["random"], ["length"], ["0", "1"])
    with pytest.raises(FigureError, match=r"figure.also='budget=4' must be a list of lists of overrides"):
        also_sweeps(OmegaConf.create({"figure": {"also": "budget=4"}}))
