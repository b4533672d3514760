"""fig_oracle_trajectories: the paper's claims on exact oracle laws, with standard errors.

Two oracles stand in for text and images (``unmask.models.oracle``): a hidden Markov law on
``L = 256`` positions and an image-like mixture of product laws on a 16 x 16 grid. Their
conditionals are exact, so every error below is the sampler's own. Four panels per oracle:

1. **Whole trajectories, MaskGIT against the moment sampler** (docs/THEORY.md section 2): the
   NLL under the true law (nats per position; ``unmask.metrics.exact.nll``) of MaskGIT and of
   the moment sampler at the same alpha schedule, against steps, next to the entropy of the law
   (exact samples). The difference and its standard error say whether they are resolved apart.
2. **Partial caching** (section 5): the path KL (``unmask.metrics.trajectory``; an upper bound
   on ``KL(q || p)`` that is exact in expectation) of the moment order with tokens at
   temperature 1, plain ``T`` steps, ``T`` steps with ``r`` sub-steps and exact refreshes, the
   same with a deliberately stale refresh (the step's first predictions), and plain ``T r``.
3. **Hybrid** (section 4): the path KL of the hybrid sampler (tokens at temperature 1) against
   steps for each gamma; the best gamma per step count and whether it is resolved.
4. **Proposition 4**: at states with a fraction of the positions masked (half, and 90%, where the
   one-step total correlations are no longer tiny), for a budget ``k`` and a set
   ``S`` picked by a rule (``confident``: the top-k max-probability positions; ``spread``: k
   positions evenly spaced in the list of masked ones; ``hybrid``: the top ``ceil(gamma k)``
   confident ones, then spread ones; ``random``), split as ``A`` = the ``ceil(gamma k)`` most
   confident positions of ``S`` and ``B`` = the rest, both sides of
   ``TC(X_S) <= sum_{i in A} H(X_i) + TC(X_B)`` (Monte Carlo over exact joint draws; the
   entropies exact). ``TC(X_S)`` is the KL error of revealing ``S`` in one step (forward KL of
   the product of the marginals to the joint); ``sum_entropy_S`` is the bound with ``A = S``.

Every row carries its standard error; ``resolved`` marks differences beyond 2 standard errors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from unmask.figures.records import Run
from unmask.figures.tables import Table, pyplot, save_figure

NAME = "fig_oracle_trajectories"
TITLE = "Exact oracles: MaskGIT vs moment, partial caching, hybrid gamma, Proposition 4"
COMPUTED = True
NEEDS = "its computed record (results.json written by `unmask-figures fig_oracle_trajectories`)"
RUNTIME = "about 4 min"
TRAJECTORY_COLUMNS = ["oracle", "schedule", "steps", "maskgit", "maskgit_se", "moment", "moment_se"]
TRAJECTORY_COLUMNS += ["difference", "difference_se", "resolved", "entropy", "entropy_se"]
CACHING_COLUMNS = ["oracle", "steps", "variant", "path_kl", "path_kl_se", "cost", "vs_plain_T", "vs_plain_Tr"]
HYBRID_COLUMNS = ["oracle", "steps", "gamma", "path_kl", "path_kl_se", "best", "resolved_vs_best"]
BOUND_COLUMNS = ["oracle", "masked", "k", "rule", "tc", "tc_se", "bound", "bound_se", "slack", "slack_se"]
BOUND_COLUMNS += ["holds", "sum_entropy_S"]


def make_oracle(spec: dict) -> Any:
    from unmask.models.oracle import HiddenMarkov, ProductMixture

    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "hmm":
        return HiddenMarkov.random(**spec)
    if kind == "mixture":
        return ProductMixture.image_like(**spec)
    raise ValueError(f"figure.oracles: kind={kind!r} must be hmm or mixture")


def difference(a: Any, b: Any) -> tuple[float, float]:
    """``a - b`` and its standard error for two independent estimates."""
    return a.mean - b.mean, math.hypot(a.stderr, b.stderr)


def resolved(diff: float, se: float) -> bool:
    return bool(abs(diff) > 2 * se)


def per_position(estimate: Any, length: int) -> tuple[float, float]:
    return estimate.mean / length, estimate.stderr / length


def trajectory_rows(name: str, oracle: Any, settings: dict) -> list[dict]:
    from unmask.metrics.exact import nll, reference_nll
    from unmask.samplers import build

    part = settings["trajectories"]
    n, length = settings["num_samples"], oracle.seq_len
    entropy = per_position(reference_nll(oracle, settings["reference_samples"], settings["seed"]), length)
    rows = []
    for schedule, params in part["schedules"].items():
        for steps in part["steps"]:
            result = {}
            for i, sampler_name in enumerate(("maskgit", "moment")):
                sampler = build(sampler_name, steps=steps, **params)
                seed = settings["seed"] * 1000 + 10 * steps + i
                tokens = sample_batches(sampler, oracle, n, seed, settings["batch_size"])
                result[sampler_name] = nll(oracle, tokens)
            diff, se = difference(result["maskgit"], result["moment"])
            rows.append(
                {
                    "oracle": name,
                    "schedule": schedule,
                    "steps": steps,
                    **{
                        key: value
                        for s in ("maskgit", "moment")
                        for key, value in zip((s, f"{s}_se"), per_position(result[s], length), strict=True)
                    },
                    "difference": diff / length,
                    "difference_se": se / length,
                    "resolved": resolved(diff, se),
                    "entropy": entropy[0],
                    "entropy_se": entropy[1],
                }
            )
    return rows


def sample_batches(sampler: Any, oracle: Any, n: int, seed: int, batch_size: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    out = [
        sampler.sample(oracle, min(batch_size, n - start), generator=generator).tokens
        for start in range(0, n, batch_size)
    ]
    return torch.cat(out)


def caching_rows(name: str, oracle: Any, settings: dict) -> list[dict]:
    from unmask.metrics.intervals import Estimate
    from unmask.metrics.trajectory import path_kl
    from unmask.samplers import build

    part = settings["caching"]
    r = part["substeps"]
    rows = []
    for steps in part["steps"]:
        variants = {
            "plain T": (steps, 1, False),
            f"r={r}, exact refresh": (steps, r, False),
            f"r={r}, stale refresh": (steps, r, True),
            "plain T r": (steps * r, 1, False),
        }
        found = {}
        for i, (label, (t, substeps, stale)) in enumerate(variants.items()):
            sampler = build("moment", steps=t, substeps=substeps, **part["sampler"])
            seed = settings["seed"] * 1000 + 10 * steps + i
            run = path_kl(sampler, oracle, settings["num_samples"], seed, settings["batch_size"], stale=stale)
            found[label] = (Estimate.of(run.kl), run.cost)
        plain, full = found["plain T"][0], found["plain T r"][0]
        for label, (estimate, cost) in found.items():
            rows.append(
                {
                    "oracle": name,
                    "steps": steps,
                    "variant": label,
                    "path_kl": estimate.mean,
                    "path_kl_se": estimate.stderr,
                    "cost": cost,
                    "vs_plain_T": verdict(*difference(estimate, plain)) if label != "plain T" else "",
                    "vs_plain_Tr": verdict(*difference(estimate, full)) if label != "plain T r" else "",
                }
            )
    return rows


def verdict(diff: float, se: float) -> str:
    """``-1.23 +- 0.40 (resolved)``: a difference with its 95% half width."""
    return f"{diff:+.3g} +- {1.96 * se:.2g}" + (" (resolved)" if resolved(diff, se) else "")


def hybrid_rows(name: str, oracle: Any, settings: dict) -> list[dict]:
    from unmask.metrics.intervals import Estimate
    from unmask.metrics.trajectory import path_kl
    from unmask.samplers import build

    part = settings["hybrid"]
    explore = "halton" if getattr(oracle, "grid", None) else "random"
    rows = []
    for steps in part["steps"]:
        found = {}
        for i, gamma in enumerate(part["gammas"]):
            sampler = build("hybrid", steps=steps, gamma=gamma, explore=explore, **part["sampler"])
            seed = settings["seed"] * 1000 + 10 * steps + i
            run = path_kl(sampler, oracle, settings["num_samples"], seed, settings["batch_size"])
            found[gamma] = Estimate.of(run.kl)
        best = min(found, key=lambda g: found[g].mean)
        for gamma, estimate in found.items():
            rows.append(
                {
                    "oracle": name,
                    "steps": steps,
                    "gamma": gamma,
                    "path_kl": estimate.mean,
                    "path_kl_se": estimate.stderr,
                    "best": gamma == best,
                    "resolved_vs_best": "" if gamma == best else resolved(*difference(estimate, found[best])),
                }
            )
    return rows


def spread_positions(masked: torch.Tensor, k: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Bool ``[B, L]``: ``k`` masked positions per row evenly spaced in the list of masked ones
    (not in ``exclude``)."""
    free = masked if exclude is None else masked & ~exclude
    out = torch.zeros_like(masked)
    for b in range(masked.shape[0]):
        where = free[b].nonzero().squeeze(1)
        picks = torch.linspace(0, where.numel() - 1, k).round().long().unique()
        taken = set(picks.tolist())
        extra = [i for i in range(where.numel()) if i not in taken][: k - picks.numel()]
        out[b, where[torch.cat([picks, torch.tensor(extra, dtype=torch.long)])]] = True
    return out


def top_k_mask(scores: torch.Tensor, masked: torch.Tensor, k: int) -> torch.Tensor:
    chosen = torch.where(masked, scores, -math.inf).topk(k, dim=1).indices
    return torch.zeros_like(masked).scatter_(1, chosen, True)


def bound_rows(name: str, oracle: Any, settings: dict) -> list[dict]:
    return [
        row
        for i, fraction in enumerate(settings["bound"]["masked_fractions"])
        for row in bound_rows_at(name, oracle, settings, fraction, settings["seed"] * 1000 + 7 + i)
    ]


def bound_rows_at(name: str, oracle: Any, settings: dict, fraction: float, seed: int) -> list[dict]:
    from unmask.metrics.trajectory import entropies, total_correlation_terms

    part = settings["bound"]
    g = torch.Generator().manual_seed(seed)
    states, length = part["states"], oracle.seq_len
    tokens = oracle.sample(states, g)
    order = torch.rand(states, length, generator=g).argsort(dim=1)
    masked = torch.zeros(states, length, dtype=torch.bool)
    masked.scatter_(1, order[:, : int(fraction * length)], True)
    tokens = torch.where(masked, oracle.mask_id, tokens)
    log_probs = oracle.conditionals(tokens)  # float64 [B, L, V]
    h = torch.where(masked, entropies(log_probs), 0.0)
    draws = oracle.sample_given(tokens, part["draws"], g)
    confidence = log_probs.amax(dim=2)
    rows = []
    for k in part["budgets"]:
        m = math.ceil(part["gamma"] * k - 1e-9)
        top = top_k_mask(confidence, masked, m)
        rules = {
            "confident": top_k_mask(confidence, masked, k),
            "hybrid": top | spread_positions(masked, k - m, exclude=top),
            "spread": spread_positions(masked, k),
            "random": top_k_mask(torch.rand(states, length, generator=g), masked, k),
        }
        for rule, subset in rules.items():
            a = top_k_mask(confidence, subset, m)  # A: the most confident ceil(gamma k) of S
            b = subset & ~a
            tc = total_correlation_terms(oracle, tokens, subset, draws, log_probs).mean(dim=1)  # [states]
            tc_b = total_correlation_terms(oracle, tokens, b, draws, log_probs).mean(dim=1)
            bound = (h * a).sum(dim=1) + tc_b
            gap = mean_se("slack", bound - tc)
            rows.append(
                {
                    "oracle": name,
                    "masked": fraction,
                    "k": k,
                    "rule": rule,
                    **mean_se("tc", tc),
                    **mean_se("bound", bound),
                    **gap,
                    "holds": bool(gap["slack"] > -2 * gap["slack_se"]),
                    "sum_entropy_S": float((h * subset).sum(dim=1).mean()),
                }
            )
    return rows


def mean_se(key: str, values: torch.Tensor) -> dict:
    from unmask.metrics.intervals import Estimate

    estimate = Estimate.of(values)
    return {key: estimate.mean, f"{key}_se": estimate.stderr}


def compute(settings: dict) -> dict:
    tables: dict[str, list[dict]] = {"trajectories": [], "caching": [], "hybrid": [], "bound": []}
    for name, spec in settings["oracles"].items():
        oracle = make_oracle(spec)
        tables["trajectories"] += trajectory_rows(name, oracle, settings)
        tables["caching"] += caching_rows(name, oracle, settings)
        tables["hybrid"] += hybrid_rows(name, oracle, settings)
        tables["bound"] += bound_rows(name, oracle, settings)
    columns = {
        "trajectories": TRAJECTORY_COLUMNS,
        "caching": CACHING_COLUMNS,
        "hybrid": HYBRID_COLUMNS,
        "bound": BOUND_COLUMNS,
    }
    return {key: {"columns": columns[key], "rows": rows} for key, rows in tables.items()}


def select(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.kind == "computed" and r.payload.get("figure") == NAME]


def point(run: Run) -> tuple:
    return (run.source,)


def collect(runs: list[Run]) -> list[Table]:
    tables, settings = runs[0].payload["tables"], runs[0].config["figure"]
    oracles = "; ".join(f"{name}: {spec}" for name, spec in settings["oracles"].items())
    note = (
        f"{settings['num_samples']} samples per point; {oracles}. Standard errors over samples "
        "(over states for the bound); resolved: beyond 2 standard errors."
    )
    titles = {
        "trajectories": "Whole trajectories: NLL under the true law (nats per position), MaskGIT - moment",
        "caching": "Partial caching: path KL (nats per sequence), moment order, tokens at temperature 1",
        "hybrid": "Hybrid: path KL (nats per sequence) against steps per gamma (tokens at temperature 1)",
        "bound": "Proposition 4: TC(X_S) <= sum_A H(X_i) + TC(X_B) (nats), at a fraction of positions masked",
    }
    out = []
    for i, key in enumerate(("trajectories", "caching", "hybrid", "bound")):
        stem = NAME if i == 0 else key
        out.append(
            Table(stem, titles[key], tables[key]["columns"], tables[key]["rows"], note=note if i == 0 else "")
        )
    return out


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    plt = pyplot()
    trajectories, caching, hybrid, bound = (t.rows for t in tables)
    names = list(dict.fromkeys(r["oracle"] for r in trajectories + caching + hybrid + bound))
    fig, axes = plt.subplots(len(names), 4, figsize=(18, 4 * len(names)), squeeze=False)
    for row, name in zip(axes, names, strict=True):
        draw_trajectories(row[0], [r for r in trajectories if r["oracle"] == name], name)
        draw_path_kl(
            row[1],
            [r for r in caching if r["oracle"] == name],
            "variant",
            "{}",
            f"{name}: partial caching (moment order, tokens at T = 1)",
        )
        draw_path_kl(
            row[2],
            [r for r in hybrid if r["oracle"] == name],
            "gamma",
            "gamma {}",
            f"{name}: hybrid, gamma against steps",
        )
        draw_bound(row[3], [r for r in bound if r["oracle"] == name], name)
    fig.suptitle(TITLE + " (bands and bars: 1.96 standard errors)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_dir, NAME)


def band(ax: Any, xs: list, ys: list, ses: list, **style: Any) -> None:
    line = ax.plot(xs, ys, marker="o", markersize=3, **style)[0]
    lo = [y - 1.96 * s for y, s in zip(ys, ses, strict=True)]
    hi = [y + 1.96 * s for y, s in zip(ys, ses, strict=True)]
    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def draw_trajectories(ax: Any, rows: list[dict], name: str) -> None:
    for schedule in dict.fromkeys(r["schedule"] for r in rows):
        part = [r for r in rows if r["schedule"] == schedule]
        xs = [r["steps"] for r in part]
        for sampler, style in (("maskgit", "-"), ("moment", "--")):
            ys = [r[sampler] for r in part]
            band(
                ax,
                xs,
                ys,
                [r[f"{sampler}_se"] for r in part],
                linestyle=style,
                label=f"{sampler}, {schedule}",
            )
    if rows:
        xs = sorted({r["steps"] for r in rows})
        entropy, se = rows[0]["entropy"], rows[0]["entropy_se"]
        ax.axhspan(
            entropy - 1.96 * se, entropy + 1.96 * se, color="0.5", alpha=0.3, label="entropy of the law"
        )
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("steps")
    ax.set_ylabel("NLL under the law (nats / position)")
    ax.set_title(f"{name}: whole trajectories", fontsize=9)
    ax.legend(fontsize=7)


def draw_path_kl(ax: Any, rows: list[dict], key: str, label: str, title: str) -> None:
    """Path KL against steps with its band, one line per value of ``key`` (``label`` formats it)."""
    for value in dict.fromkeys(r[key] for r in rows):
        part = [r for r in rows if r[key] == value]
        band(
            ax,
            [r["steps"] for r in part],
            [r["path_kl"] for r in part],
            [r["path_kl_se"] for r in part],
            label=label.format(value),
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel("steps T")
    ax.set_ylabel("path KL (nats / sequence)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def draw_bound(ax: Any, rows: list[dict], name: str) -> None:
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    budgets = list(dict.fromkeys((r.get("masked", 0.5), r["k"]) for r in rows))
    width = 0.8 / max(len(rules), 1)
    for j, rule in enumerate(rules):
        part = {(r.get("masked", 0.5), r["k"]): r for r in rows if r["rule"] == rule}
        xs = [i + j * width for i in range(len(budgets))]
        tc = [part[k]["tc"] for k in budgets]
        bars = ax.bar(
            xs, tc, width, yerr=[1.96 * part[k]["tc_se"] for k in budgets], label=f"TC(X_S), {rule}"
        )
        ax.scatter(
            xs, [part[k]["bound"] for k in budgets], marker="_", s=150, color=bars.patches[0].get_facecolor()
        )
    ticks = [f"k = {k}\n{fraction:.0%} masked" for fraction, k in budgets]
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(budgets))], ticks, fontsize=7)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylabel("nats (bars: TC(X_S); ticks: the bound)")
    ax.set_title(f"{name}: Proposition 4, both sides", fontsize=9)
    ax.legend(fontsize=7)
