"""fig_equivalence: one MaskGIT step against one moment-sampler step, exactly.

docs/THEORY.md section 2: for k = 1 the law of the (position, token) that one MaskGIT step reveals
tends to the moment sampler's ``p_i(v)**beta / sum_j m_j(beta)`` as the number N of masked
positions grows, the total variation shrinking like 1/N. Both laws are exact here (MaskGIT's by
quadrature, ``unmask.metrics.laws``), so the curves carry no sampling noise. Predictions come
from two sources: rows drawn from a Dirichlet(``concentration``) (the check quoted in docs/THEORY.md)
and an exact oracle, an image-like ``ProductMixture`` on a 32 x 32 grid, at an exact sample with
N random positions masked (its exact conditionals given the other 1024 - N).

The third panel is the budget k > 1 at fixed N: the inclusion laws ``pi(i, v) = P(i among the k
revealed, token v)`` of both steps (``maskgit_k_step_inclusion``, ``moment_k_step_inclusion``,
quadrature), their total variation after dividing by k (``pi / k`` is a law on (i, v)), against
the ``k / (N - k)`` that the theory says the gap grows like. ``pi / k`` is the law of one of the
revealed (position, token) pairs picked uniformly at random, a function of the revealed (set,
tokens), so this TV is a lower bound on the TV between the full laws of the revealed (set, tokens).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from unmask.figures.records import Run
from unmask.figures.tables import Table, pyplot, save_figure

logger = logging.getLogger(__name__)

NAME = "fig_equivalence"
TITLE = "One-step total variation between MaskGIT and the moment sampler against N (k = 1)"
K_TITLE = "One step with budget k: total variation between the inclusion laws / k against k / (N - k)"
COMPUTED = True
NEEDS = "its computed record (results.json written by `unmask-figures fig_equivalence`)"
RUNTIME = "about 1 min"
COLUMNS = ["law", "alpha", "N", "tv", "tv_min", "tv_max", "draws"]
K_COLUMNS = ["law", "alpha", "N", "k", "tv", "tv_min", "tv_max", "k_over_n_minus_k", "tv_over_ref", "draws"]
K_SLOPE_COLUMNS = ["law", "alpha", "N", "slope", "k_from", "k_to", "tv_at_largest_k"]


def oracle_rows(n: int, draw: int, settings: dict) -> torch.Tensor:
    from unmask.models.oracle import ProductMixture

    side = settings["oracle_side"]
    oracle = ProductMixture.image_like(side, side, vocab_size=settings["vocab_size"], seed=settings["seed"])
    g = torch.Generator().manual_seed(settings["seed"] * 1000 + draw)
    x = oracle.sample(1, g)
    masked = torch.randperm(oracle.seq_len, generator=g)[:n]
    x[0, masked] = oracle.mask_id
    return oracle.conditionals(x)[0, masked].exp()


def prediction_rows(law: str, n: int, draw: int, settings: dict) -> torch.Tensor:
    """``[n, V]`` predictions at the N = n masked positions: Dirichlet rows or the oracle's."""
    from unmask.metrics.laws import dirichlet_rows

    if law == "dirichlet":
        g = torch.Generator().manual_seed(settings["seed"] * 1000 + 7 * n + draw)
        return dirichlet_rows(n, settings["vocab_size"], settings["concentration"], g)
    return oracle_rows(n, draw, settings)


def compute(settings: dict) -> dict:
    """Exact TV for every (law, alpha, N) and draw; the fitted log-log slopes; the same with
    budget k for every (law, alpha, N, k < N) of the k panel."""
    from unmask.metrics.laws import maskgit_one_step_law, moment_one_step_law

    rows = []
    for law in settings["laws"]:
        for alpha in settings["alphas"]:
            for n in settings["sizes"]:
                if law == "mixture" and n > settings["oracle_side"] ** 2:
                    continue
                tvs = []
                for draw in range(settings["draws"]):
                    p = prediction_rows(law, n, draw, settings)
                    exact = maskgit_one_step_law(p, alpha=alpha, grid_points=settings["grid_points"])
                    moment = moment_one_step_law(p, beta=1.0 + 1.0 / alpha)
                    tvs.append(0.5 * float((exact - moment).abs().sum()))
                rows.append(
                    {
                        "law": law,
                        "alpha": alpha,
                        "N": n,
                        "tv": sum(tvs) / len(tvs),
                        "tv_min": min(tvs),
                        "tv_max": max(tvs),
                        "draws": len(tvs),
                    }
                )
    k_rows = k_step_rows(settings)
    return {
        "tv": {"columns": COLUMNS, "rows": rows},
        "slopes": {"columns": SLOPE_COLUMNS, "rows": slopes(rows, settings)},
        "k_step": {"columns": K_COLUMNS, "rows": k_rows},
        "k_slopes": {"columns": K_SLOPE_COLUMNS, "rows": k_slopes(k_rows)},
    }


def k_step_rows(settings: dict) -> list[dict]:
    """TV between ``pi / k`` of MaskGIT and of the moment sampler (beta = 1 + 1/alpha) for every
    (law, alpha in ``k_alphas``, N in ``k_sizes``, k in ``k_values`` below N), mean over draws,
    on the same predictions as the k = 1 panel at that N. ``tv_over_ref``: TV / (k / (N - k)),
    constant in k where the TV grows like k / (N - k)."""
    from unmask.metrics.laws import maskgit_k_step_inclusion, moment_k_step_inclusion

    rows = []
    for law in settings["laws"]:
        for alpha in settings["k_alphas"]:
            for n in settings["k_sizes"]:
                ks = [k for k in settings["k_values"] if k < n]
                if not ks or (law == "mixture" and n > settings["oracle_side"] ** 2):
                    continue
                tvs: list[list[float]] = [[] for _ in ks]
                for draw in range(settings["draws"]):
                    p = prediction_rows(law, n, draw, settings)
                    maskgit = maskgit_k_step_inclusion(p, alpha, ks, grid_points=settings["grid_points"])
                    moment = moment_k_step_inclusion(
                        p, 1.0 + 1.0 / alpha, ks, grid_points=settings["grid_points"]
                    )
                    for slot, k in enumerate(ks):
                        tvs[slot].append(0.5 * float((maskgit[slot] - moment[slot]).abs().sum()) / k)
                    logger.info("fig_equivalence k panel: %s alpha=%g N=%d draw %d done", law, alpha, n, draw)
                for k, tv in zip(ks, tvs, strict=True):
                    rows.append(
                        {
                            "law": law,
                            "alpha": alpha,
                            "N": n,
                            "k": k,
                            "tv": sum(tv) / len(tv),
                            "tv_min": min(tv),
                            "tv_max": max(tv),
                            "k_over_n_minus_k": k / (n - k),
                            "tv_over_ref": sum(tv) / len(tv) / (k / (n - k)),
                            "draws": len(tv),
                        }
                    )
    return rows


def fit_slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of log y on log x."""
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def k_slopes(rows: list[dict]) -> list[dict]:
    """Slope of log TV on log(k / (N - k)) over every k of each (law, alpha, N) (1: TV grows like
    k / (N - k))."""
    out = []
    for key in dict.fromkeys((r["law"], r["alpha"], r["N"]) for r in rows):
        pts = sorted(
            (r["k"], r["k_over_n_minus_k"], r["tv"]) for r in rows if (r["law"], r["alpha"], r["N"]) == key
        )
        pts = [pt for pt in pts if pt[2] > 0]
        if len(pts) < 2:
            continue
        law, alpha, n = key
        out.append(
            {
                "law": law,
                "alpha": alpha,
                "N": n,
                "slope": fit_slope([(x, tv) for _, x, tv in pts]),
                "k_from": pts[0][0],
                "k_to": pts[-1][0],
                "tv_at_largest_k": pts[-1][2],
            }
        )
    return out


SLOPE_COLUMNS = ["law", "alpha", "slope", "fit_from_N", "tv_at_largest_N"]


def slopes(rows: list[dict], settings: dict) -> list[dict]:
    """Least-squares slope of log TV on log N over N >= ``fit_from``, per (law, alpha)."""
    out = []
    for law in settings["laws"]:
        for alpha in settings["alphas"]:
            pts = [
                (r["N"], r["tv"])
                for r in rows
                if r["law"] == law and r["alpha"] == alpha and r["N"] >= settings["fit_from"] and r["tv"] > 0
            ]
            if len(pts) < 2:
                continue
            slope = fit_slope(pts)
            largest = max((r for r in rows if r["law"] == law and r["alpha"] == alpha), key=lambda r: r["N"])
            out.append(
                {
                    "law": law,
                    "alpha": alpha,
                    "slope": slope,
                    "fit_from_N": settings["fit_from"],
                    "tv_at_largest_N": largest["tv"],
                }
            )
    return out


def select(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.kind == "computed" and r.payload.get("figure") == NAME]


def point(run: Run) -> tuple:
    return (run.source,)


def collect(runs: list[Run]) -> list[Table]:
    tables = runs[0].payload["tables"]
    settings = runs[0].config["figure"]
    note = (
        f"V = {settings['vocab_size']}; dirichlet: Dirichlet({settings['concentration']}) rows; mixture: "
        f"ProductMixture oracle on a {settings['oracle_side']} x {settings['oracle_side']} grid, N positions "
        f"masked at an exact sample; mean over {settings['draws']} draws."
    )
    out = [
        Table(NAME, TITLE, tables["tv"]["columns"], tables["tv"]["rows"], note=note),
        Table(
            "slopes",
            "Fitted log-log slopes of TV against N",
            tables["slopes"]["columns"],
            tables["slopes"]["rows"],
        ),
    ]
    if "k_step" in tables:  # records from before the k panel have two tables
        k_note = (
            "TV between pi / k of the two steps, pi(i, v) = P(i among the k revealed, token v) (exact, "
            "quadrature); a lower bound on the TV between the laws of the revealed (set, tokens). Same "
            f"predictions as above; mean over {settings['draws']} draws."
        )
        out += [
            Table("k_step", K_TITLE, tables["k_step"]["columns"], tables["k_step"]["rows"], note=k_note),
            Table(
                "k_slopes",
                "Fitted log-log slopes of TV against k / (N - k), over every k of each (law, alpha, N)",
                tables["k_slopes"]["columns"],
                tables["k_slopes"]["rows"],
            ),
        ]
    return out


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    plt = pyplot()
    from unmask.figures.common import alpha_colors

    rows, slope_rows = tables[0].rows, tables[1].rows
    k_rows = next((t.rows for t in tables if t.name == "k_step"), [])
    laws = list(dict.fromkeys(r["law"] for r in rows))
    panels = len(laws) + (1 if k_rows else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
    colors = alpha_colors([r["alpha"] for r in rows] + [r["alpha"] for r in k_rows])
    titles = {"dirichlet": "Dirichlet rows", "mixture": "ProductMixture oracle (exact conditionals)"}
    for ax, law in zip(axes[0][: len(laws)], laws, strict=True):
        for alpha in dict.fromkeys(r["alpha"] for r in rows):
            pts = sorted(
                (r["N"], r["tv"], r["tv_min"], r["tv_max"])
                for r in rows
                if r["law"] == law and r["alpha"] == alpha
            )
            if not pts:
                continue
            n, tv, lo, hi = zip(*pts, strict=True)
            slope = next(
                (s["slope"] for s in slope_rows if s["law"] == law and s["alpha"] == alpha), math.nan
            )
            ax.plot(
                n,
                tv,
                marker="o",
                markersize=3,
                color=colors[alpha],
                label=f"alpha = {alpha:g} (slope {slope:.2f})",
            )
            ax.fill_between(n, lo, hi, color=colors[alpha], alpha=0.15, linewidth=0)
        ref_n = sorted({r["N"] for r in rows if r["law"] == law})
        if ref_n:
            anchor = max(r["tv"] for r in rows if r["law"] == law and r["N"] == ref_n[0])
            ax.plot(ref_n, [anchor * ref_n[0] / n for n in ref_n], color="0.5", linestyle=":", label="1 / N")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("N (masked positions)")
        ax.set_ylabel("TV(MaskGIT step, moment step)")
        ax.set_title(titles.get(law, law))
        ax.legend()
    if k_rows:
        k_panel(axes[0][-1], k_rows, colors)
    fig.suptitle("One step: exact total variation between MaskGIT and the moment sampler", fontsize=10)
    return save_figure(fig, out_dir, NAME)


def k_panel(ax: Any, rows: list[dict], colors: dict) -> None:
    """TV of ``pi / k`` against ``k / (N - k)``, one line per (law, alpha, N), log-log."""
    styles = {"dirichlet": "-", "mixture": "--"}
    markers = ["o", "s", "^", "D", "v"]
    sizes = sorted({r["N"] for r in rows})
    for key in dict.fromkeys((r["law"], r["alpha"], r["N"]) for r in rows):
        law, alpha, n = key
        pts = sorted(
            (r["k_over_n_minus_k"], r["tv"], r["tv_min"], r["tv_max"])
            for r in rows
            if (r["law"], r["alpha"], r["N"]) == key and r["tv"] > 0
        )
        if not pts:
            continue
        x, tv, lo, hi = zip(*pts, strict=True)
        ax.plot(
            x,
            tv,
            marker=markers[sizes.index(n) % len(markers)],
            markersize=3,
            linestyle=styles.get(law, "-."),
            color=colors[alpha],
            label=f"{law}, alpha = {alpha:g}, N = {n}",
        )
        ax.fill_between(x, lo, hi, color=colors[alpha], alpha=0.12, linewidth=0)
    xs = sorted({r["k_over_n_minus_k"] for r in rows})
    if xs:
        anchor = max(r["tv"] for r in rows if r["k_over_n_minus_k"] == xs[0])
        ax.plot(xs, [anchor * x / xs[0] for x in xs], color="0.5", linestyle=":", label="k / (N - k)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k / (N - k)")
    ax.set_ylabel("TV(inclusion laws / k)")
    ax.set_title("Budget k: inclusion laws (k = 1 is the leftmost point of each line)")
    ax.legend(fontsize=6)
