"""unmask.figures.compare_runs on synthetic run records: the cell rules, the interval of a cell
(checked against formulas written out here), refusals naming the key or the runs, the W&B
report spec and its wandb_workspaces report (built offline), and the CLI's outputs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from unmask.cli import compare_runs as cli
from unmask.figures.compare_runs import build_report, compare, estimate, report_spec
from unmask.figures.records import FigureError, Run


def run(variant="moment", budget=8, seed=0, num_samples=64, metrics=None, **config) -> Run:
    cfg = {"sampler": {"name": variant, "steps": budget, "alpha": 4.5}, "budget": budget, "seed": seed}
    cfg |= {"model": {"name": "mnist"}, "variant": variant, "logger": {"group": f"g{seed}"}} | config
    return Run(f"/runs/{variant}/{budget}/{seed}/results.json", cfg, metrics or {}, num_samples=num_samples)


def test_one_run_uses_its_own_stderr_and_a_normal_interval_centred_on_the_value():
    alone = estimate("fid", [run(metrics={"fid": 10.0, "fid_stderr": 2.0, "fid_ci95": [11.0, 17.0]})])
    assert (alone.value, alone.stderr) == (10.0, 2.0)  # the bootstrap's biased percentile interval unused
    assert alone.low == pytest.approx(10.0 - 1.959964 * 2.0) and alone.high == pytest.approx(
        10.0 + 1.959964 * 2.0
    )
    off = estimate("fid", [run(metrics={"fid": 10.0, "fid_stderr": float("nan")})])
    assert off.stderr is None and off.low is None  # metrics.bootstrap.replicates=0


def test_replicates_average_and_combine_their_errors_or_their_spread():
    both = estimate(
        "fid",
        [
            run(seed=0, metrics={"fid": 10.0, "fid_stderr": 3.0}),
            run(seed=1, metrics={"fid": 14.0, "fid_stderr": 4.0}),
        ],
    )
    assert both.value == 12.0 and both.stderr == pytest.approx(5.0 / 2) and both.runs == 2  # sqrt(9+16)/2
    spread = estimate("fid", [run(seed=s, metrics={"fid": v}) for s, v in enumerate([1.0, 2.0, 6.0])])
    sd = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2)
    assert spread.stderr == pytest.approx(sd / math.sqrt(3))
    none = estimate("fid", [run(metrics={"fid": 1.0})])
    assert none.stderr is None and none.low is None  # never shown as a zero-width interval


def test_cells_are_grouped_and_sorted_and_seeds_are_replicates():
    runs = [
        run(v, b, s, metrics={"fid": 100.0 + b + s})
        for v in ("moment", "maskgit")
        for b in (16, 4)
        for s in (0, 1)
    ]
    table = compare(runs, ["variant"], "budget", ["fid"]).table()
    assert [(r["variant"], r["budget"], r["runs"]) for r in table.rows] == [
        ("maskgit", 4, 2),
        ("maskgit", 16, 2),
        ("moment", 4, 2),
        ("moment", 16, 2),
    ]
    assert table.rows[0]["fid"] == 104.5 and table.note == ""


def test_runs_that_differ_in_an_ungrouped_key_are_listed_not_averaged():
    runs = [run(seed=0, metrics={"fid": 1.0}), run(seed=1, num_samples=128, metrics={"fid": 2.0})]
    with pytest.raises(FigureError, match=r"differ in num_samples=64 vs 128.*group by num_samples") as err:
        compare(runs, ["variant"], "budget", ["fid"])
    assert "/runs/moment/8/0/results.json" in str(err.value) and "/runs/moment/8/1/results.json" in str(
        err.value
    )
    alpha = [
        run(metrics={"fid": 1.0}),
        run(seed=1, metrics={"fid": 2.0}, sampler={"name": "moment", "steps": 8, "alpha": 3}),
    ]
    with pytest.raises(FigureError, match=r"sampler\.alpha=4\.5 vs 3"):
        compare(alpha, ["variant"], "budget", ["fid"])
    grouped = compare(alpha, ["variant", "sampler.alpha"], "budget", ["fid"]).table()
    assert [r["sampler.alpha"] for r in grouped.rows] == [3, 4.5]


def test_keys_that_differ_between_cells_are_named_under_the_table():
    runs = [run("moment", metrics={"fid": 1.0}), run("maskgit", num_samples=128, metrics={"fid": 2.0})]
    table = compare(runs, ["variant"], "budget", ["fid"]).table()
    assert "num_samples in [64, 128]" in table.note and "not like for like" in table.note


def test_a_key_or_metric_no_run_has_is_one_line_naming_it():
    runs = [run(metrics={"fid": 1.0})]
    with pytest.raises(FigureError, match=r"'sampler\.gamma': no run has it"):
        compare(runs, ["sampler.gamma"], "budget", ["fid"])
    with pytest.raises(FigureError, match="--y 'kid': no run reports it; the runs report fid"):
        compare(runs, ["variant"], "budget", ["kid"])


def test_the_report_spec_has_a_panel_per_metric_grouped_by_sampler_over_steps():
    runs = [run(v, b, metrics={"fid": 1.0, "label_entropy_bits": 3.0}) for v in ("a", "b") for b in (4, 8)]
    spec = report_spec(compare(runs, ["variant"], "budget", ["fid", "label_entropy_bits"]), "me", "unmask")
    assert [p["y"] for p in spec["panels"]] == ["eval/fid", "eval/label_entropy_bits"]
    assert {p["x"] for p in spec["panels"]} == {"budget"} and spec["runset"]["groupby"] == ["variant"]
    assert {p["groupby_rangefunc"] for p in spec["panels"]} == {"stderr"}
    report = build_report(spec)  # wandb_workspaces objects, no network until saved
    grid = report.blocks[-1]
    assert report.project == "unmask" and report.entity == "me" and len(grid.panels) == 2
    assert grid.panels[0].y[0].name == "eval/fid" and grid.panels[0].x.name == "budget"
    assert grid.panels[0].groupby.name == "variant" and grid.runsets[0].groupby == ["variant"]


def write_runs(root: Path, runs: list[Run]) -> None:
    for i, r in enumerate(runs):
        folder = root / str(i)
        folder.mkdir(parents=True)
        record = {
            "status": "complete",
            "config": r.config,
            "metrics": r.metrics,
            "cost": {},
            "num_samples": r.num_samples,
            "variant": r.label,
        }
        (folder / "results.json").write_text(json.dumps(record))


def test_the_cli_writes_the_table_the_plot_and_the_report_spec_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    write_runs(
        tmp_path / "sweep",
        [run(v, b, metrics={"fid": 10.0 * b, "fid_stderr": 1.0}) for v in ("a", "b") for b in (4, 8)],
    )
    out = tmp_path / "out"
    code = cli.main([str(tmp_path / "sweep"), "--y", "fid", "--out", str(out), "--report"])
    assert code == 0
    rows = list(csv.DictReader((out / "comparison.csv").read_text().splitlines()))
    assert [(r["variant"], r["budget"], float(r["fid"])) for r in rows] == [
        ("a", "4", 40.0),
        ("a", "8", 80.0),
        ("b", "4", 40.0),
        ("b", "8", 80.0),
    ]
    assert float(rows[0]["fid_ci95_low"]) == pytest.approx(40 - 1.959964)
    assert "| a | 4 | 40 [38.04, 41.96] | 1 | 64 |" in (out / "comparison.md").read_text()
    assert (out / "comparison.png").stat().st_size > 0
    spec = json.loads((out / "report_spec.json").read_text())
    assert spec["panels"][0]["y"] == "eval/fid" and '"eval/fid"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--group", "nope"], "--group/--x key 'nope': no run has it"),
        (["--y", "kid"], "--y 'kid': no run reports it"),
    ],
)
def test_the_cli_refuses_bad_keys_with_one_line_and_status_2(tmp_path, capsys, args, message):
    write_runs(tmp_path / "sweep", [run(metrics={"fid": 1.0})])
    argv = [
        str(tmp_path / "sweep"),
        "--out",
        str(tmp_path / "out"),
        *(["--y", "fid"] if "--y" not in args else []),
        *args,
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert (
        message in err
        and len(err.strip().splitlines()) == 1
        and not (tmp_path / "out" / "comparison.csv").exists()
    )


def test_the_cli_names_a_missing_folder(tmp_path, capsys):
    assert cli.main([str(tmp_path / "absent"), "--y", "fid", "--out", str(tmp_path / "out")]) == 2
    assert "do not exist" in capsys.readouterr().err
