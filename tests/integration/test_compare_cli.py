"""The first main job runs as a real Hydra app and writes a complete results.json."""

import json
from pathlib import Path

import pytest

from hydra_cli import run_cli


def run_compare(tmp_path: Path, *overrides: str):
    return run_cli("unmask.cli.compare", tmp_path, *overrides, timeout=300)


def test_compare_writes_results_for_every_sampler_and_step(tmp_path):
    result = run_compare(
        tmp_path,
        "num_samples=40",
        "batch_size=16",
        "steps=[2,L]",
        "oracle.height=4",
        "oracle.width=4",
        "samplers.halton.grid=[4,4]",
        "samplers.hybrid.grid=[4,4]",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "results.json").read_text())
    rows = record["rows"]
    assert rows[0]["sampler"] == "exact samples"
    labels = {
        "ancestral",
        "random",
        "confidence",
        "margin",
        "entropy",
        "halton",
        "moment",
        "moment_t1",
        "maskgit",
        "moment_cached",
        "hybrid",
    }
    assert {(r["sampler"], r["steps"]) for r in rows[1:]} == {(s, n) for s in labels for n in (2, 16)}
    for r in rows[1:]:
        assert r["nll"] > 0
        assert r["nfe"] == r["steps"] or (r["sampler"] == "ancestral" and r["nfe"] <= r["steps"])
        # partial caching costs extra only when a step reveals more than one position
        cached = r["sampler"] == "moment_cached" and r["steps"] < 16
        assert r["cost"] >= r["nfe"] and (r["cost"] > r["nfe"]) == cached
    assert "exact NLL" in result.stdout
    assert not list(tmp_path.glob("*.tmp")), "results are written atomically"


def test_bad_steps_entry_fails_before_compute_naming_it(tmp_path):
    result = run_compare(tmp_path, "steps=[4,100]")
    assert result.returncode != 0
    assert "steps entry 100 must be an integer in [1, 64]" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_bad_sampler_parameter_is_named_with_its_label(tmp_path):
    result = run_compare(tmp_path, "samplers.moment.alpha=-1")
    assert result.returncode != 0
    assert "samplers.moment: alpha=-1" in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_samplers_without_steps_get_the_step_count_as_their_budget(tmp_path):
    result = run_compare(
        tmp_path,
        "num_samples=20",
        "batch_size=20",
        "steps=[4]",
        "+samplers.threshold={}",
        "+samplers.eb={}",
        "+samplers.first_hitting={}",
        "+samplers.remdm={}",
        "+samplers.semi_ar={block_length: 16}",
    )
    assert result.returncode == 0, result.stderr
    rows = {r["sampler"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"][1:]}
    for name in ("threshold", "eb", "first_hitting", "remdm", "semi_ar"):
        assert 1 <= rows[name]["nfe"] <= 4, rows[name]  # 4 blocks of 16: one call each


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+foo=1", "foo: unknown key"),
        ("steps=4", "steps=4 must be a non-empty list"),
        ("steps=[0]", "steps entry 0 must be an integer in [1, 64]"),
        ("num_samples=0", "num_samples=0 must be an integer >= 1"),
        ("oracle.components=0", "oracle:"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, override, message):
    result = run_compare(tmp_path, override)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr  # one line
    assert not (tmp_path / "results.json").exists()
