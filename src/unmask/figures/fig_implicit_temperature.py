"""fig_implicit_temperature: the token temperature MaskGIT's schedule implies at each step.

docs/THEORY.md section 2: a MaskGIT step with choice temperature alpha_t commits tokens as if drawn at
temperature ``alpha_t / (1 + alpha_t)`` when many positions are masked (alpha_t = alpha_0 (1 -
(t+1)/T), alpha_0 = 4.5). Three parts:

- *asymptotic*: that formula per step for several T;
- *exact*: the temperature read off the tokens MaskGIT's own step commits on a product law
  (every masked position predicts the same Dirichlet row ``p``), with the cosine schedule's
  (N_t, k_t) for several L: the temperature ``tau`` at which ``p**(1/tau)`` has the committed
  tokens' mean log-probability (Monte Carlo over the sampler's ``step``). It departs from the
  formula where k_t is not small against N_t, most at the last step, which keeps every proposal
  (temperature 1);
- *measured*: on the shipped models, the mean log-probability (under the model's untempered
  prediction) of the tokens MaskGIT and the moment sampler commit at each step, and the implied
  temperature over the committed positions' predictions; the moment sampler draws at 1/beta_t.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from unmask.figures.records import Run
from unmask.figures.tables import Table, pyplot, save_figure

NAME = "fig_implicit_temperature"
TITLE = "The token temperature implied at each step of MaskGIT's schedule"
COMPUTED = True
NEEDS = "its computed record (results.json written by `unmask-figures fig_implicit_temperature`)"
RUNTIME = "about 1.5 min"
SCHEDULE_COLUMNS = ["part", "T", "L", "step", "progress", "N", "k", "alpha_t", "tau_asymptotic", "tau"]
MEASURED_COLUMNS = [
    "model",
    "sampler",
    "step",
    "k",
    "alpha_t",
    "tau_asymptotic",
    "mean_log_prob",
    "tau_implied",
]


def asymptotic_tau(alpha_t: float) -> float:
    return alpha_t / (1.0 + alpha_t) if math.isfinite(alpha_t) else 1.0


def schedule_rows(settings: dict) -> list[dict]:
    from unmask.samplers.cts import annealed_alpha

    rows = []
    for steps in settings["analytic"]["steps"]:
        for t in range(steps):
            alpha_t = annealed_alpha(settings["alpha"], True, t, steps)
            rows.append(
                {
                    "part": "asymptotic",
                    "T": steps,
                    "L": None,
                    "step": t + 1,
                    "progress": (t + 1) / steps,
                    "N": None,
                    "k": None,
                    "alpha_t": alpha_t,
                    "tau_asymptotic": asymptotic_tau(alpha_t),
                    "tau": asymptotic_tau(alpha_t),
                }
            )
    return rows


def exact_rows(settings: dict) -> list[dict]:
    """Implied temperature of MaskGIT's committed tokens on a product law, per step (Monte Carlo)."""
    from unmask.metrics.laws import dirichlet_rows, implied_temperature
    from unmask.samplers import build
    from unmask.samplers.cts import annealed_alpha
    from unmask.samplers.schedules import unmask_counts

    part = settings["analytic"]
    g = torch.Generator().manual_seed(settings["seed"])
    p = dirichlet_rows(1, part["vocab_size"], part["concentration"], g)[0]
    log_p = p.log()
    steps = part["exact_steps"]
    sampler = build("maskgit", steps=steps, alpha=settings["alpha"], schedule=settings["schedule"])
    rows = []
    for length in part["lengths"]:
        counts = unmask_counts(torch.tensor([length]), steps, settings["schedule"])[0].tolist()
        masked_now = length
        for t, k in enumerate(counts):
            chunk = max(1, part["elements"] // (masked_now * part["vocab_size"]))
            total, committed = 0.0, 0
            while committed < part["tokens"]:
                logits = log_p.float().expand(chunk, masked_now, -1)
                masked = torch.ones(chunk, masked_now, dtype=torch.bool)
                _, _, tokens = sampler.step(logits, masked, torch.full((chunk,), k), t, g)
                total += float(log_p[tokens].sum())
                committed += tokens.numel()
            alpha_t = annealed_alpha(settings["alpha"], True, t, steps)
            rows.append(
                {
                    "part": "exact",
                    "T": steps,
                    "L": length,
                    "step": t + 1,
                    "progress": (t + 1) / steps,
                    "N": masked_now,
                    "k": k,
                    "alpha_t": alpha_t,
                    "tau_asymptotic": asymptotic_tau(alpha_t),
                    "tau": implied_temperature(log_p[None], total / committed),
                }
            )
            masked_now -= k
    return rows


class RecordingDenoiser:
    """Forwards every call to ``denoiser`` and keeps the logits it returned (on the CPU)."""

    def __init__(self, denoiser: Any):
        self.denoiser, self.calls = denoiser, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.denoiser, name)

    def __call__(self, tokens: torch.Tensor, cond: Any = None) -> torch.Tensor:
        logits = self.denoiser(tokens, cond)
        self.calls.append(logits.detach().float().cpu())
        return logits


def measured_rows(settings: dict) -> list[dict]:
    from unmask.metrics.laws import implied_temperature
    from unmask.models.pretrained import load_denoiser
    from unmask.samplers import build
    from unmask.samplers.cts import annealed_alpha

    part = settings["measured"]
    steps, rows = part["steps"], []
    for model_name in part["models"]:
        model = load_denoiser(model_name)
        for sampler_name in ("maskgit", "moment"):
            sampler = build(sampler_name, steps=steps, alpha=settings["alpha"], schedule=settings["schedule"])
            recorder = RecordingDenoiser(model)
            generator = torch.Generator().manual_seed(settings["seed"])
            out = sampler.sample(recorder, part["num_samples"], generator=generator, trace=True)
            for t, (record, logits) in enumerate(zip(out.trace, recorder.calls, strict=True)):
                log_p = torch.log_softmax(logits.double(), dim=-1)
                valid = record.positions >= 0
                batch = torch.arange(valid.shape[0])[:, None].expand_as(valid)[valid]
                chosen = log_p[batch, record.positions[valid]]  # [n, V]: the committed rows
                taken = chosen.gather(1, record.tokens[valid][:, None]).squeeze(1)
                alpha_t = annealed_alpha(settings["alpha"], True, t, steps)
                rows.append(
                    {
                        "model": model_name,
                        "sampler": sampler_name,
                        "step": t + 1,
                        "k": valid.sum().item() / valid.shape[0],
                        "alpha_t": alpha_t,
                        "tau_asymptotic": asymptotic_tau(alpha_t),
                        "mean_log_prob": float(taken.mean()),
                        "tau_implied": implied_temperature(chosen, float(taken.mean())),
                    }
                )
    return rows


def compute(settings: dict) -> dict:
    return {
        "schedule": {"columns": SCHEDULE_COLUMNS, "rows": schedule_rows(settings) + exact_rows(settings)},
        "measured": {"columns": MEASURED_COLUMNS, "rows": measured_rows(settings)},
    }


def select(runs: list[Run]) -> list[Run]:
    return [r for r in runs if r.kind == "computed" and r.payload.get("figure") == NAME]


def point(run: Run) -> tuple:
    return (run.source,)


def collect(runs: list[Run]) -> list[Table]:
    tables, settings = runs[0].payload["tables"], runs[0].config["figure"]
    a, m = settings["analytic"], settings["measured"]
    return [
        Table(
            NAME,
            TITLE,
            tables["schedule"]["columns"],
            tables["schedule"]["rows"],
            note=(
                f"alpha_0 = {settings['alpha']}, {settings['schedule']} schedule. exact: MaskGIT's step on a "
                f"product law (one Dirichlet({a['concentration']}) row, V = {a['vocab_size']}), "
                f">= {a['tokens']} committed tokens per step; tau = temperature matching their mean "
                "log-probability."
            ),
        ),
        Table(
            "measured",
            "Measured on the shipped models: committed tokens per step",
            tables["measured"]["columns"],
            tables["measured"]["rows"],
            note=(
                f"{m['num_samples']} samples, T = {m['steps']}; mean_log_prob under the model's untempered "
                "prediction; tau_implied over the committed positions' predictions."
            ),
        ),
    ]


def draw(tables: list[Table], out_dir: Path) -> list[Path]:
    plt = pyplot()
    from matplotlib import colormaps

    schedule, measured = tables[0].rows, tables[1].rows
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    cmap = colormaps["viridis"]
    asym = [r for r in schedule if r["part"] == "asymptotic"]
    all_steps = sorted({r["T"] for r in asym})
    for i, steps in enumerate(all_steps):
        pts = [(r["step"], r["tau"]) for r in asym if r["T"] == steps]
        ax.plot(
            *zip(*pts, strict=True),
            color=cmap(i / max(1, len(all_steps) - 1) * 0.85),
            label=f"alpha/(1+alpha), T = {steps}",
        )
    markers = "os^Dv"
    for i, length in enumerate(sorted({r["L"] for r in schedule if r["part"] == "exact"})):
        pts = [(r["step"], r["tau"]) for r in schedule if r["part"] == "exact" and r["L"] == length]
        steps = next(r["T"] for r in schedule if r["part"] == "exact")
        ax.plot(
            *zip(*pts, strict=True),
            linestyle="none",
            marker=markers[i % 5],
            markersize=4,
            color="tab:red",
            alpha=0.5 + 0.5 * i / 3,
            label=f"exact step, T = {steps}, L = {length}",
        )
    ax.set_xlabel("step t")
    ax.set_ylabel("token temperature")
    ax.set_title("implied by the schedule (alpha_0 = 4.5, cosine)")
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax = axes[1]
    styles = {"maskgit": {"linestyle": "-", "marker": "o"}, "moment": {"linestyle": "--", "marker": "x"}}
    colors = {"mnist": "tab:blue", "shakespeare": "tab:green"}
    for model in dict.fromkeys(r["model"] for r in measured):
        for sampler in ("maskgit", "moment"):
            pts = [
                (r["step"], r["tau_implied"])
                for r in measured
                if r["model"] == model and r["sampler"] == sampler
            ]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    color=colors.get(model, "grey"),
                    markersize=3,
                    label=f"{model}, {sampler}",
                    **styles[sampler],
                )
    theory = sorted({(r["step"], r["tau_asymptotic"]) for r in measured})
    if theory:
        ax.plot(
            *zip(*theory, strict=True),
            color="black",
            linewidth=0.8,
            linestyle=":",
            label="alpha_t/(1+alpha_t)",
        )
    ax.set_xlabel("step t")
    ax.set_ylabel("implied temperature of committed tokens")
    ax.set_title("measured on the shipped models")
    ax.set_ylim(0, 1.3)
    ax.legend()
    ax = axes[2]
    for model in dict.fromkeys(r["model"] for r in measured):
        for sampler in ("maskgit", "moment"):
            pts = [
                (r["step"], r["mean_log_prob"])
                for r in measured
                if r["model"] == model and r["sampler"] == sampler
            ]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    color=colors.get(model, "grey"),
                    markersize=3,
                    label=f"{model}, {sampler}",
                    **styles[sampler],
                )
    ax.set_xlabel("step t")
    ax.set_ylabel("mean log p(committed token)")
    ax.set_title("MaskGIT (solid) against the moment sampler at 1/beta (dashed)")
    ax.legend()
    fig.suptitle("Implicit token temperature of MaskGIT", fontsize=10)
    return save_figure(fig, out_dir, NAME)
