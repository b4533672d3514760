"""What the evaluation figures share: reading a run's quality numbers, and the plotting helpers."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from unmask.figures.records import Run
from unmask.figures.tables import Table, finite

MODELS = ("mnist", "shakespeare")
MODEL_TITLES = {"mnist": "MNIST (domain FID, lower is better)", "shakespeare": "Shakespeare"}


def number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


# the quality columns of the figures and the results.json metric each one is
QUALITY_METRICS = {
    "fid": "fid_mnist",
    "fid_floor": "fid_mnist_data_same_n",
    "label_entropy_bits": "label_entropy_bits",
    "gen_ppl": "gen_ppl",
    "bits_per_char": "gen_bits_per_char",
    "bits_per_char_floor": "gen_bits_per_char_data_same_n",
    "entropy_bits": "sample_entropy_bits",
}
Z95 = 1.959963984540054


def quality_columns(run: Run) -> dict[str, float]:
    """The numbers every evaluation figure reports for a run: the quality metric of its model's
    domain (MNIST: domain FID, its floor at the same n and the entropy of the classifier's labels,
    a diversity check; text: judge perplexity with the per-sample entropy), each with its standard
    error (``<column>_stderr``: the run's ``<metric>_stderr``, NaN for a run recorded without one),
    the cost and the sampling wall time."""
    m, c = run.metrics, run.cost
    values = {column: number(m.get(metric)) for column, metric in QUALITY_METRICS.items()}
    errors = {
        f"{column}_stderr": number(m.get(f"{metric}_stderr")) for column, metric in QUALITY_METRICS.items()
    }
    return {
        **values,
        **errors,
        "nfe": number(c.get("nfe")),
        "cost": number(c.get("forward_equivalents")),
        "seconds": number(c.get("sampling_seconds")),
        "num_samples": run.num_samples,
    }


QUALITY = {"mnist": ("fid", "domain FID"), "shakespeare": ("gen_ppl", "gen. perplexity (SmolLM2)")}


def quality_key(model: str) -> tuple[str, str]:
    return QUALITY.get(model, ("fid", "quality"))


def select_models(runs: Iterable[Run], figure: str) -> list[Run]:
    """Evaluation runs of the shipped models that ``figure`` may use: those its preset made, and
    ad-hoc runs (no ``figure.preset``); a run of another figure's preset is not used."""
    return [
        r for r in runs if r.kind == "eval" and r.model in MODELS and r.get("figure.preset", figure) == figure
    ]


def sort_rows(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    def key(row: dict) -> tuple:
        return tuple(
            (0, row[k]) if isinstance(row.get(k), (int, float)) else (1, str(row.get(k))) for k in keys
        )

    return sorted(rows, key=key)


def pivot(
    table: Table,
    name: str,
    title: str,
    rows_by: str,
    columns_by: str,
    value: Callable[[dict], Any],
    where: dict | None = None,
    note: str = "",
) -> Table:
    """A wide table: one row per ``rows_by`` value, one column per ``columns_by`` value."""
    picked = table.where(**(where or {}))
    row_keys = list(dict.fromkeys(r[rows_by] for r in picked))
    col_keys = sorted(dict.fromkeys(r[columns_by] for r in picked), key=lambda v: (str(type(v)), v))
    columns = [rows_by, *[f"{columns_by} {c}" for c in col_keys]]
    out = Table(name, title, columns, note=note)
    for rk in row_keys:
        row = {rows_by: rk}
        for ck in col_keys:
            cells = [r for r in picked if r[rows_by] == rk and r[columns_by] == ck]
            row[f"{columns_by} {ck}"] = value(cells[0]) if cells else None
        out.rows.append(row)
    return out


def pool(values: list[float], errors: list[float]) -> dict[str, float]:
    """The mean of one point's seeds and its standard errors: ``within`` (the runs' own,
    ``sqrt(sum se^2) / k``), ``seeds`` (``sd / sqrt(k)``, NaN for one seed), ``stderr`` (the
    larger of the two that are finite) and ``ratio`` (``sd^2 / mean(se^2)``)."""
    pairs = [(v, e) for v, e in zip(values, errors, strict=True) if math.isfinite(v)]
    if not pairs:
        return {
            "mean": math.nan,
            "stderr": math.nan,
            "within": math.nan,
            "seeds": math.nan,
            "ratio": math.nan,
        }
    k = len(pairs)
    vs = [v for v, _ in pairs]
    es = [e for _, e in pairs]
    within = math.sqrt(sum(e * e for e in es)) / k if all(math.isfinite(e) for e in es) else math.nan
    sd = statistics.stdev(vs) if k > 1 else math.nan
    seeds = sd / math.sqrt(k) if k > 1 else math.nan
    mean_var = sum(e * e for e in es) / k
    ratio = sd * sd / mean_var if k > 1 and math.isfinite(mean_var) and mean_var > 0 else math.nan
    finite_errors = [e for e in (within, seeds) if math.isfinite(e)]
    return {
        "mean": sum(vs) / k,
        "stderr": max(finite_errors) if finite_errors else math.nan,
        "within": within,
        "seeds": seeds,
        "ratio": ratio,
    }


def data_line(rows: list[dict], key: str) -> dict | None:
    """The runs' data line ``key`` (the FID floor, the real-text line), one draw per seed (runs of
    one seed and n share it; rows without a ``seed`` are told apart by their value), pooled like
    a point (``pool``), with the draws (``{seed: (value, stderr)}``); ``None`` without one."""
    draws: dict = {}
    for r in rows:
        if math.isfinite(r.get(key, math.nan)):
            draws.setdefault(r.get("seed", r[key]), (r[key], r.get(f"{key}_stderr", math.nan)))
    if not draws:
        return None
    values, errors = zip(*draws.values(), strict=True)
    return pool(list(values), list(errors)) | {"draws": dict(sorted(draws.items()))}


def empty_panel(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


@dataclass(frozen=True)
class Ranking:
    """Methods at one point, ranked against the best: ``tied`` are not resolved from ``best``
    (their difference is within ``z`` standard errors of the difference, the runs independent:
    ``sqrt(se_a^2 + se_b^2)``; a value without a standard error is never resolved), ``worse`` are
    resolved worse than it, each list in the order of its mean."""

    best: str
    value: float
    tied: tuple[str, ...]
    worse: tuple[str, ...]


def rank_against_best(
    rows: list[dict], label: str, key: str, lower_is_better: bool = True, z: float = 2.0
) -> Ranking | None:
    """The ``Ranking`` of ``rows`` (one per ``label`` value) by column ``key`` and its
    ``<key>_stderr``; ``None`` without a finite value."""
    scored = [r for r in rows if finite([r.get(key)])]
    if not scored:
        return None
    sign = 1 if lower_is_better else -1
    scored.sort(key=lambda r: sign * r[key])
    best = scored[0]
    se_best = number(best.get(f"{key}_stderr"))
    tied, worse = [], []
    for r in scored[1:]:
        se = math.hypot(se_best, number(r.get(f"{key}_stderr")))
        resolved = math.isfinite(se) and abs(r[key] - best[key]) > z * se
        (worse if resolved else tied).append(str(r[label]))
    return Ranking(str(best[label]), float(best[key]), tuple(tied), tuple(worse))


RESOLVED_METRICS = {  # model -> (column, what it is); lower is better in both
    "mnist": ("fid", "domain FID"),
    "shakespeare": ("bits_per_char", "judge bits per character"),
}
# A judge rewards repetition: text whose per-sample entropy (bits per 128-character sample; held-out
# windows have 4.50, untempered samples 4.4-4.5) is below this is degenerate (runs of one
# character), and is named apart instead of ranked as the lowest bits per character.
DEGENERATE_ENTROPY_BITS = {"shakespeare": 3.5}


def degenerate(row: dict, model: str) -> bool:
    floor = DEGENERATE_ENTROPY_BITS.get(model)
    return floor is not None and number(row.get("entropy_bits")) < floor  # NaN is never below


def resolved_table(rows: list[dict], label: str, at: tuple[str, ...], name: str = "resolved") -> Table:
    """Per model and point ``at`` (e.g. the steps): the best ``label`` by the model's metric
    (``RESOLVED_METRICS``), those not resolved from it and those resolved worse (``Ranking``)."""
    out = Table(
        name,
        "What is resolved (2 standard errors of the difference, lower is better)",
        ["model", "metric", *at, "best", "value", "not_resolved_from_best", "resolved_worse", "degenerate"],
        note=(
            f"At each {', '.join(at)}: the best {label} by its mean, those whose difference to it is "
            "within 2 standard errors (sqrt(se_a^2 + se_b^2), independent runs), and those resolved "
            "worse. Orderings inside the first group are not claimed. Text whose per-sample entropy "
            f"is below {DEGENERATE_ENTROPY_BITS['shakespeare']} bits is degenerate (a judge rewards "
            "repetition) and is listed apart, not ranked."
        ),
    )
    for model, (key, what) in RESOLVED_METRICS.items():
        picked = [r for r in rows if r.get("model") == model]
        for point in sorted({tuple(r[k] for k in at) for r in picked}):
            here = [r for r in picked if tuple(r[k] for k in at) == point]
            ranking = rank_against_best([r for r in here if not degenerate(r, model)], label, key)
            bad = ", ".join(str(r[label]) for r in here if degenerate(r, model)) or "none"
            if ranking is None and bad == "none":
                continue
            out.rows.append(
                {
                    "model": model,
                    "metric": what,
                    **dict(zip(at, point, strict=True)),
                    "best": ranking.best if ranking else "none",
                    "value": ranking.value if ranking else math.nan,
                    "not_resolved_from_best": (", ".join(ranking.tied) if ranking else "") or "none",
                    "resolved_worse": (", ".join(ranking.worse) if ranking else "") or "none",
                    "degenerate": bad,
                }
            )
    return out


def resolved_sentence(row: dict, where: str) -> str:
    """A ``resolved_table`` row as one line: ``where: best X (v); not resolved from it: ...;
    resolved worse: ...`` and, if any, the degenerate ones."""
    from unmask.figures.tables import format_value

    if row["best"] == "none":
        parts = [f"{where}: no finite value"]
    else:
        parts = [f"{where}: best {row['best']} ({format_value(row['value'])})"]
        parts += [
            f"not resolved from it: {row['not_resolved_from_best']}",
            f"resolved worse: {row['resolved_worse']}",
        ]
    if row["degenerate"] != "none":
        parts.append(f"degenerate (entropy < {DEGENERATE_ENTROPY_BITS[row['model']]}): {row['degenerate']}")
    return "; ".join(parts)


def with_interval(row: dict, key: str) -> str:
    """``value +- 1.96 se`` of column ``key`` for a table cell (the value alone without a stderr)."""
    from unmask.figures.tables import format_value

    stderr = row.get(f"{key}_stderr")
    if isinstance(stderr, float) and math.isfinite(stderr):
        return f"{format_value(row[key])} ± {format_value(Z95 * stderr)}"
    return format_value(row.get(key))


def line_with_band(ax: Any, rows: list[dict], x: str, y: str, **style: Any) -> bool:
    """A line through the rows' finite (x, y) points, sorted by x, with a band of +- 1.96 standard
    errors (``<y>_stderr``) where the rows have one; False if no point."""
    points = sorted(
        (r[x], r[y], r.get(f"{y}_stderr", math.nan)) for r in rows if finite([r[x], r[y]]) == [r[x], r[y]]
    )
    if not points:
        return False
    xs, ys, _ = zip(*points, strict=True)
    (line,) = ax.plot(xs, ys, **({"marker": "o", "markersize": 3} | style))
    banded = [(px, py, e) for px, py, e in points if isinstance(e, float) and math.isfinite(e)]
    if banded:
        bx, by, be = zip(*banded, strict=True)
        low = [v - Z95 * e for v, e in zip(by, be, strict=True)]
        high = [v + Z95 * e for v, e in zip(by, be, strict=True)]
        ax.fill_between(bx, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    return True


def plot_lines(
    ax: Any,
    rows: list[dict],
    x: str,
    y: str,
    group: str,
    style: Callable[[Any], dict],
    label: Callable[[Any], str] = str,
) -> bool:
    """One line per ``group`` value through the rows' (x, y) points (sorted by x), each with its
    95% band (``line_with_band``); False if no point."""
    drawn = False
    for key in dict.fromkeys(r[group] for r in rows):
        mine = [r for r in rows if r[group] == key]
        drawn = line_with_band(ax, mine, x, y, label=label(key), **style(key)) or drawn
    return drawn


def method_lines(
    ax: Any, rows: list[dict], methods: list[str], y: str, colors: dict, dashed: Iterable[str] = ()
) -> None:
    """One line per method through its rows' (nfe, ``y``) points with its 95% band; the methods in
    ``dashed`` (the peers) dashed."""
    dashed = set(dashed)
    for method in methods:
        line_with_band(
            ax,
            [r for r in rows if r["method"] == method],
            "nfe",
            y,
            color=colors[method],
            label=method,
            linestyle="--" if method in dashed else "-",
        )


def shared_legend(fig: Any, axes: Iterable[Any], columns: int) -> None:
    """One legend above the figure for the labels of every panel, each label once."""
    handles, labels = [], []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), columns), bbox_to_anchor=(0.5, 0.99)
    )


def alpha_label(alpha: Any) -> str:
    return "alpha = inf" if isinstance(alpha, float) and math.isinf(alpha) else f"alpha = {alpha:g}"


def alpha_colors(alphas: Iterable[float]) -> dict[float, Any]:
    from matplotlib import colormaps

    finite_alphas = sorted(a for a in alphas if math.isfinite(a))
    cmap = colormaps["viridis"]
    colors = {a: cmap(i / max(1, len(finite_alphas) - 1) * 0.85) for i, a in enumerate(finite_alphas)}
    colors[math.inf] = "black"
    return colors
