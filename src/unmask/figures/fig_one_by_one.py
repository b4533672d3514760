"""fig_one_by_one: one-by-one choose-then-sample is exact; one-by-one MaskGIT is not.

Proposition 3 (reconstructed, docs/THEORY.md section 3): with exact conditionals, a CTS sampler that
reveals one position per step at temperature 1 samples the joint exactly, whatever its order
rule. On a random tabular joint (``TabularJoint``, V = 3, L = 4) each sampler draws
``num_samples`` sequences one position per step; their TV to the joint is compared with the
99% quantile of the TV that exact sampling shows at the same n, and with the TV of the
sampler's exact law (enumeration, ``unmask.metrics.laws``). The right panel gives the exact
one-by-one laws of MaskGIT and of the (tempered) moment sampler over alpha: with only N <= 4
masked positions the two are not equivalent (docs/THEORY.md section 2 needs N large).
"""

from __future__ import annotations

from pathlib import Path

import torch

from unmask.figures.records import Run
from unmask.figures.tables import Table, pyplot, save_figure

NAME = "fig_one_by_one"
TITLE = "One position per step on a tabular joint: CTS is exact, MaskGIT is biased"
COMPUTED = True
NEEDS = "its computed record (results.json written by `unmask-figures fig_one_by_one`)"
RUNTIME = "about 15 s"
COLUMNS = ["label", "sampler", "alpha", "tv", "exact_tv_q99", "g_test_p", "kl", "tv_exact_law", "verdict"]
CURVE_COLUMNS = ["alpha", "tv_maskgit_joint", "tv_moment_joint", "tv_maskgit_moment"]


def exact_law(joint, params: dict) -> torch.Tensor:
    """The sampler's exact one-by-one law: the joint for CTS at temperature 1 (Proposition 3;
    for ``moment`` checked by enumeration), MaskGIT's and the tempered moment sampler's by
    enumeration."""
    from unmask.metrics.laws import maskgit_one_by_one_law, moment_one_by_one_law

    name, alpha = params["name"], params.get("alpha", 4.5)
    if name == "maskgit":
        return maskgit_one_by_one_law(joint, alpha)
    if name == "moment":
        return moment_one_by_one_law(joint, alpha, params.get("token_temperature"))
    return joint.probs


def compute(settings: dict) -> dict:
    from unmask.metrics.exact import compare_to_joint, total_variation
    from unmask.metrics.laws import maskgit_one_by_one_law, moment_one_by_one_law
    from unmask.models.oracle import TabularJoint
    from unmask.samplers import build

    joint = TabularJoint.random(**settings["joint"])
    rows = []
    for i, (label, params) in enumerate(settings["samplers"].items()):
        params = dict(params)
        sampler = build(params.pop("name"), steps=joint.seq_len, **params)
        generator = torch.Generator().manual_seed(settings["seed"] * 1000 + i)
        tokens = sampler.sample(joint, settings["num_samples"], generator=generator).tokens
        result = compare_to_joint(joint, tokens)
        spec = settings["samplers"][label]
        rows.append(
            {
                "label": label,
                "sampler": spec["name"],
                "alpha": spec.get("alpha"),
                "tv": result.tv,
                "exact_tv_q99": result.exact_tv_q99,
                "g_test_p": result.p_value,
                "kl": result.kl,
                "tv_exact_law": total_variation(exact_law(joint, spec), joint.probs),
                "verdict": "consistent with exact" if result.p_value > 1e-3 else "biased",
            }
        )
    curve = []
    for alpha in settings["alphas"]:
        maskgit, moment = maskgit_one_by_one_law(joint, alpha), moment_one_by_one_law(joint, alpha)
        curve.append(
            {
                "alpha": alpha,
                "tv_maskgit_joint": total_variation(maskgit, joint.probs),
                "tv_moment_joint": total_variation(moment, joint.probs),
                "tv_maskgit_moment": total_variation(maskgit, moment),
            }
        )
    return {
        "samplers": {"columns": COLUMNS, "rows": rows},
        "alphas": {"columns": CURVE_COLUMNS, "rows": curve},
    }


def select(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.kind == "computed" and r.payload.get("figure") == NAME]


def point(run: Run) -> tuple:
    return (run.source,)


def collect(runs: list[Run]) -> list[Table]:
    tables, settings = runs[0].payload["tables"], runs[0].config["figure"]
    joint = settings["joint"]
    note = (
        f"TabularJoint.random(V={joint['vocab_size']}, L={joint['seq_len']}, "
        f"concentration={joint['concentration']}, seed={joint['seed']}); {settings['num_samples']} samples "
        "each, steps = L; consistent: G-test p > 1e-3. "
        "tv_exact_law: TV of the sampler's exact law to the joint (enumeration; 0 for CTS at temperature 1)."
    )
    return [
        Table(NAME, TITLE, tables["samplers"]["columns"], tables["samplers"]["rows"], note=note),
        Table(
            "alphas",
            "Exact one-by-one laws over alpha (fixed alpha, no annealing)",
            tables["alphas"]["columns"],
            tables["alphas"]["rows"],
        ),
    ]


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    plt = pyplot()
    rows, curve = tables[0].rows, tables[1].rows
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [r["label"] for r in rows]
    colors = ["tab:red" if r["verdict"] == "biased" else "tab:blue" for r in rows]
    left.bar(range(len(rows)), [r["tv"] for r in rows], color=colors, alpha=0.8, label="TV of the samples")
    left.scatter(
        range(len(rows)),
        [r["tv_exact_law"] for r in rows],
        color="black",
        marker="_",
        s=200,
        zorder=3,
        label="TV of the exact law",
    )
    q99 = [r["exact_tv_q99"] for r in rows]
    if q99:
        left.axhline(
            max(q99), color="0.4", linestyle="--", linewidth=0.8, label="exact sampling, 99% quantile"
        )
    left.set_xticks(range(len(rows)), labels, rotation=45, ha="right")
    left.set_ylabel("TV to the joint")
    left.set_yscale("symlog", linthresh=1e-2)
    left.set_title("one position per step (blue: consistent, red: biased)")
    left.legend()
    if curve:
        alphas = [r["alpha"] for r in curve]
        right.plot(
            alphas, [r["tv_maskgit_joint"] for r in curve], marker="o", markersize=3, label="MaskGIT vs joint"
        )
        right.plot(
            alphas, [r["tv_moment_joint"] for r in curve], marker="s", markersize=3, label="moment vs joint"
        )
        right.plot(
            alphas,
            [r["tv_maskgit_moment"] for r in curve],
            marker="^",
            markersize=3,
            linestyle="--",
            label="MaskGIT vs moment",
        )
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel("alpha (fixed)")
        right.set_ylabel("TV (exact laws)")
        right.set_title("exact one-by-one laws (moment: tokens at 1/beta)")
        right.legend()
    fig.suptitle("Exactness of one-by-one choose-then-sample against MaskGIT's bias", fontsize=10)
    return save_figure(fig, out_dir, NAME)
