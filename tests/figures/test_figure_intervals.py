"""The evaluation figures carry each run's interval: the quality columns take the runs'
``<metric>_stderr``, lines get a band of +- 1.96 standard errors, table cells read ``value ± half
width``, and a run recorded without a stderr is drawn and printed without one (never as zero)."""

from __future__ import annotations

import math

import pytest

from unmask.figures.common import line_with_band, quality_columns, with_interval
from unmask.figures.records import Run
from unmask.figures.tables import pyplot


def test_quality_columns_carry_the_metrics_standard_errors():
    run = Run("r/results.json", {"model": {"name": "mnist"}}, {"fid_mnist": 150.0, "fid_mnist_stderr": 4.0})
    columns = quality_columns(run)
    assert (columns["fid"], columns["fid_stderr"]) == (150.0, 4.0) and math.isnan(columns["gen_ppl_stderr"])


def test_a_line_gets_a_band_of_two_standard_errors_only_where_there_is_one():
    plt = pyplot()
    _, ax = plt.subplots()
    rows = [{"nfe": 4, "fid": 10.0, "fid_stderr": 1.0}, {"nfe": 8, "fid": 8.0, "fid_stderr": 0.5}]
    assert line_with_band(ax, rows, "nfe", "fid", label="a")
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert min(ys) == pytest.approx(8.0 - 1.959964 * 0.5) and max(ys) == pytest.approx(10.0 + 1.959964)
    _, bare = plt.subplots()
    assert line_with_band(bare, [{"nfe": 4, "fid": 10.0, "fid_stderr": math.nan}], "nfe", "fid")
    assert not bare.collections and len(bare.lines) == 1
    plt.close("all")


def test_table_cells_show_the_half_width():
    assert with_interval({"fid": 150.0, "fid_stderr": 4.0}, "fid") == "150.0 ± 7.84"
    assert with_interval({"fid": 150.0, "fid_stderr": math.nan}, "fid") == "150.0"


def test_ranking_against_the_best_resolves_only_beyond_two_standard_errors_of_the_difference():
    from unmask.figures.common import rank_against_best, resolved_sentence, resolved_table

    rows = [
        {"m": "a", "fid": 100.0, "fid_stderr": 3.0},
        {"m": "b", "fid": 108.0, "fid_stderr": 4.0},  # diff 8 < 2 * 5: not resolved
        {"m": "c", "fid": 111.0, "fid_stderr": 4.0},  # diff 11 > 2 * 5: resolved
        {"m": "d", "fid": 300.0, "fid_stderr": math.nan},  # no standard error: never resolved
        {"m": "e", "fid": math.nan, "fid_stderr": 1.0},  # no value: left out
    ]
    ranking = rank_against_best(rows, "m", "fid")
    assert (ranking.best, ranking.value, ranking.tied, ranking.worse) == ("a", 100.0, ("b", "d"), ("c",))
    higher = rank_against_best(rows, "m", "fid", lower_is_better=False)
    assert higher.best == "d" and set(higher.tied) == {"a", "b", "c"}
    (row,) = resolved_table([{"model": "mnist", "steps": 4, **r} for r in rows], "m", ("steps",)).rows
    assert resolved_sentence(row, "4 steps") == (
        "4 steps: best a (100.0); not resolved from it: b, d; resolved worse: c"
    )
    assert rank_against_best(rows[4:], "m", "fid") is None


def test_degenerate_text_is_named_apart_not_ranked_best():
    from unmask.figures.common import resolved_table

    rows = [
        {
            "model": "shakespeare",
            "m": "runs_of_spaces",
            "steps": 8,
            "bits_per_char": 0.3,
            "entropy_bits": 0.05,
        },
        {"model": "shakespeare", "m": "a", "steps": 8, "bits_per_char": 3.3, "entropy_bits": 4.1},
        {"model": "shakespeare", "m": "b", "steps": 8, "bits_per_char": 4.2, "entropy_bits": 4.4},
    ]
    (row,) = resolved_table(rows, "m", ("steps",)).rows
    assert (row["best"], row["resolved_worse"], row["degenerate"]) == ("a", "none", "runs_of_spaces")
    assert row["not_resolved_from_best"] == "b", "no standard errors: nothing is resolved"
