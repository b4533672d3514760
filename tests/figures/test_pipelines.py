"""Each figure's whole pipeline on tiny settings, as a user runs it: ``unmask-figures FIGURE --run``
(the preset's unmask-eval sweep, one process per model, or the exact computation), then the
tables and plot files. Also ``make run``'s pipeline (the quickstart) on a few runs."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def figures(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m unmask.cli.figures ARGS --out tmp/figures`` run from ``tmp_path`` (so its
    ``outputs/sweeps`` lands there)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "unmask.cli.figures", *args, "--out", str(tmp_path / "figures")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def assert_drawn(tmp_path: Path, name: str) -> list[dict]:
    out = tmp_path / "figures"
    for suffix in (".png", ".pdf", ".csv", ".md"):
        assert (out / f"{name}{suffix}").stat().st_size > 0, f"{name}{suffix}"
    assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    return rows(out / f"{name}.csv")


def test_quickstart_pipeline_runs_both_models_and_prints_the_summary(tmp_path):
    result = figures(
        tmp_path,
        "quickstart",
        "--run",
        "sampler=maskgit,moment_cached,semi_ar,llada_t1",
        "budget=4",
        "num_samples=4",
        "batch_size=4",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = assert_drawn(tmp_path, "quickstart")
    assert {(r["model"], r["method"]) for r in table} == {
        (m, s) for m in ("mnist", "shakespeare") for s in ("maskgit", "moment_cached", "semi_ar", "llada_t1")
    }
    text = {r["method"]: r for r in table if r["model"] == "shakespeare"}
    assert float(text["maskgit"]["gen_ppl"]) > 1 and float(text["maskgit"]["entropy_bits"]) > 0
    # judge bits per character, beside the real-text line (4 random held-out windows, the run's seed)
    assert 0 < float(text["maskgit"]["bits_per_char_floor"]) < float(text["maskgit"]["bits_per_char"])
    resolved = rows(tmp_path / "figures" / "quickstart_resolved.csv")
    assert {(r["model"], r["steps"]) for r in resolved} == {("mnist", "4"), ("shakespeare", "4")}
    for r in resolved:  # every method is named once: the best, not resolved from it, or resolved worse
        named = [r["best"], *r["not_resolved_from_best"].split(", "), *r["resolved_worse"].split(", ")]
        named += r["degenerate"].split(", ")
        assert sorted(n for n in named if n != "none") == sorted(
            ["maskgit", "moment_cached", "semi_ar", "llada_t1"]
        )
    mnist = {r["method"]: r for r in table if r["model"] == "mnist"}
    assert float(mnist["moment_cached"]["cost"]) > float(mnist["moment_cached"]["nfe"]) == 4
    assert float(mnist["semi_ar"]["nfe"]) == 7, "7 blocks of 7 codes: one call each at budget 4"
    assert "Summary" in result.stdout and "moment_cached" in result.stdout
    assert (tmp_path / "figures" / "quickstart_samples_mnist.png").exists()
    assert "**semi_ar**" in (tmp_path / "figures" / "quickstart_samples_shakespeare.md").read_text()
    # the sweep folder holds one process log per model, and redrawing reads the latest sweep
    sweeps = list((tmp_path / "outputs" / "sweeps" / "quickstart").iterdir())
    assert len(sweeps) == 1 and {p.name for p in sweeps[0].glob("*.log")} == {"mnist.log", "shakespeare.log"}
    again = figures(tmp_path, "quickstart")
    assert again.returncode == 0 and f"reading outputs/sweeps/quickstart/{sweeps[0].name}" in again.stdout


def test_maskgit_vs_moment_pipeline(tmp_path):
    result = figures(
        tmp_path,
        "fig_maskgit_vs_moment",
        "--run",
        "sampler.alpha=1",
        "budget=2,4",
        "num_samples=4",
        "metrics=fast",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = assert_drawn(tmp_path, "fig_maskgit_vs_moment")
    assert len(table) == 8  # 2 models x 2 samplers x 2 steps
    assert all(r["fid"] for r in table if r["model"] == "mnist")
    assert all(r["entropy_bits"] for r in table if r["model"] == "shakespeare")


def test_partial_caching_pipeline(tmp_path):
    result = figures(
        tmp_path,
        "fig_partial_caching",
        "--run",
        "model=mnist",
        "sampler.substeps=1,4",
        "budget=4",
        "num_samples=4",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = {r["substeps"]: r for r in assert_drawn(tmp_path, "fig_partial_caching")}
    assert float(table["1"]["cost"]) == 4 < float(table["4"]["cost"])


def test_hybrid_pipeline(tmp_path):
    result = figures(
        tmp_path,
        "fig_hybrid",
        "--run",
        "--jobs",
        "1",
        "model=mnist",
        "sampler=hybrid_g0,hybrid,moment,halton,threshold",
        "budget=4",
        "num_samples=4",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = {r["method"]: r for r in assert_drawn(tmp_path, "fig_hybrid")}
    gammas = [table[m]["gamma"] for m in ("hybrid_g0", "hybrid", "moment", "halton", "threshold")]
    assert gammas == ["0.0", "0.5", "1.0", "", ""]


def test_computed_figures_pipelines(tmp_path):
    result = figures(
        tmp_path,
        "fig_equivalence",
        "figure.sizes=[4,16]",
        "figure.alphas=[1.0]",
        "figure.draws=1",
        "figure.fit_from=4",
        "figure.k_values=[1,2]",
        "figure.k_sizes=[16]",
        "figure.k_alphas=[1.0]",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = assert_drawn(tmp_path, "fig_equivalence")
    assert {(r["law"], r["N"]) for r in table} == {
        (law, n) for law in ("dirichlet", "mixture") for n in ("4", "16")
    }
    slopes = rows(tmp_path / "figures" / "fig_equivalence_slopes.csv")
    assert len(slopes) == 2 and all(-2 < float(s["slope"]) < 0 for s in slopes)
    k_step = {
        (r["law"], r["N"], r["k"]): float(r["tv"])
        for r in rows(tmp_path / "figures" / "fig_equivalence_k_step.csv")
    }
    assert set(k_step) == {(law, "16", k) for law in ("dirichlet", "mixture") for k in ("1", "2")}
    one = {r["law"]: float(r["tv"]) for r in table if r["N"] == "16"}
    assert all(
        abs(k_step[(law, "16", "1")] - one[law]) < 1e-8 < k_step[(law, "16", "2")] - one[law] for law in one
    )

    result = figures(tmp_path, "fig_one_by_one", "figure.num_samples=3000", "figure.alphas=[1.0,10.0]")
    assert result.returncode == 0, result.stdout + result.stderr
    table = {r["label"]: r for r in assert_drawn(tmp_path, "fig_one_by_one")}
    assert (
        table["random"]["verdict"] == "consistent with exact"
        and float(table["random"]["tv_exact_law"]) < 1e-12
    )
    assert table["maskgit_a1"]["verdict"] == "biased" and float(table["maskgit_a1"]["tv_exact_law"]) > 0.05

    result = figures(
        tmp_path,
        "fig_implicit_temperature",
        "figure.measured.models=[mnist]",
        "figure.measured.steps=4",
        "figure.measured.num_samples=4",
        "figure.analytic.steps=[4]",
        "figure.analytic.exact_steps=4",
        "figure.analytic.lengths=[16]",
        "figure.analytic.tokens=200",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = assert_drawn(tmp_path, "fig_implicit_temperature")
    exact = [r for r in table if r["part"] == "exact"]
    assert len(exact) == 4 and abs(float(exact[-1]["tau"]) - 1) < 0.02, "the last step keeps every proposal"
    measured = rows(tmp_path / "figures" / "fig_implicit_temperature_measured.csv")
    assert {(r["sampler"], r["step"]) for r in measured} == {
        (s, str(t)) for s in ("maskgit", "moment") for t in range(1, 5)
    }
    # a computed figure redraws from its record
    record = next((tmp_path / "outputs" / "sweeps" / "fig_one_by_one").glob("*/results.json"))
    assert figures(tmp_path, "fig_one_by_one", str(record)).returncode == 0


def test_oracle_trajectories_pipeline_on_small_oracles(tmp_path):
    result = figures(
        tmp_path,
        "fig_oracle_trajectories",
        "figure.oracles.hmm.seq_len=16",
        "figure.oracles.mixture.height=4",
        "figure.oracles.mixture.width=4",
        "figure.num_samples=40",
        "figure.reference_samples=80",
        "figure.batch_size=40",
        "figure.trajectories.steps=[4]",
        "figure.caching.steps=[4]",
        "figure.hybrid.steps=[4]",
        "figure.hybrid.gammas=[0.0,1.0]",
        "figure.bound.budgets=[2]",
        "figure.bound.states=8",
        "figure.bound.draws=8",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = assert_drawn(tmp_path, "fig_oracle_trajectories")
    assert {(r["oracle"], r["steps"]) for r in table} >= {("hmm", "4"), ("mixture", "4")}
    bound = rows(tmp_path / "figures" / "fig_oracle_trajectories_bound.csv")
    assert {(r["oracle"], r["masked"]) for r in bound} == {
        (o, m) for o in ("hmm", "mixture") for m in ("0.5", "0.9")
    }
    assert all(r["holds"] == "True" for r in bound), "Proposition 4 is a theorem"


def test_model_panels_pipeline_runs_the_seeds_and_then_the_own_law(tmp_path):
    result = figures(
        tmp_path,
        "fig_model_panels",
        "--run",
        "sampler=moment,random",
        "budget=2",
        "seed=0,1",
        "num_samples=4",
        "batch_size=4",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fig_model_panels: 12 runs, 2 process(es)" in result.stdout  # (2 x 2 + 2 own law) x 2 models
    table = assert_drawn(tmp_path, "fig_model_panels")
    assert {(r["model"], r["method"], r["steps"], r["seed"]) for r in table} == {
        (m, method, steps, s)
        for m, length in (("mnist", "49"), ("shakespeare", "128"))
        for method, steps in (("moment", "2"), ("random", "2"), ("own_law", length))
        for s in ("0", "1")
    }
    assert all(float(r["nfe"]) == float(r["steps"]) for r in table), "budget=length: one call per position"
    pooled = rows(tmp_path / "figures" / "fig_model_panels_pooled.csv")
    assert len(pooled) == 6 and {r["seeds"] for r in pooled} == {"2"}
    resolved = rows(tmp_path / "figures" / "fig_model_panels_resolved.csv")
    assert {(r["model"], r["steps"]) for r in resolved} == {("mnist", "2"), ("shakespeare", "2")}
    own_law = rows(tmp_path / "figures" / "fig_model_panels_own_law.csv")
    assert {(r["model"], r["method"]) for r in own_law} == {
        (m, s) for m in ("mnist", "shakespeare") for s in ("moment", "random")
    }
    lines = {r["model"]: r for r in rows(tmp_path / "figures" / "fig_model_panels_data_lines.csv")}
    assert set(lines) == {"mnist", "shakespeare"} and lines["mnist"]["per_seed"].count("seed") == 2
    sweep = next((tmp_path / "outputs" / "sweeps" / "fig_model_panels").iterdir())
    assert {p.name for p in sweep.glob("*.log")} == {
        "mnist.log",
        "shakespeare.log",
        "mnist_also0.log",
        "shakespeare_also0.log",
    }


def test_a_failed_sweep_names_its_log(tmp_path):
    result = figures(
        tmp_path,
        "fig_hybrid",
        "--run",
        "--jobs",
        "1",
        "model=mnist",
        "sampler=hybrid",
        "budget=4",
        "num_samples=0",
    )
    assert result.returncode == 2
    assert "unmask-eval failed for model=mnist" in result.stderr and "num_samples=0" in result.stderr
    assert "mnist.log" in result.stderr


def test_make_run_is_the_quickstart_pipeline():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun: venv\n", 1)[1].split("\n\n", 1)[0]
    assert recipe.strip() == "$(PY) -m unmask.cli.figures quickstart --run"
