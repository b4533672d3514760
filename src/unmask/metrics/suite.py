"""Which metrics a run computes, and how they are split across ranks.

A metric has up to two stages. ``batch_features(tokens)`` runs on the rank that generated the
batch, right after sampling, for metrics that need a network (classifier or Inception features,
the judge LM's per-sample NLL); the features are stored in the batch's shard, so they are
computed in parallel, once per sample, and survive a resume. ``reduce(tokens, features)`` runs once
on rank 0 over the union of all batches (in batch order), so the numbers do not depend on the
number of processes. Each network is loaded once per process, on first use, and shared by
the runs of a sweep in that process.

Names: ``exact_nll`` and ``joint_distance`` (oracle laws; the latter tabular only), ``text_stats``
(unigram entropy, per-sample entropy, distinct-n), ``gen_ppl`` (always with ``text_stats``),
``fid_mnist`` (fast domain FID + label entropy), ``fid_inception``. Keywords: ``fast`` = the
metrics that need no downloaded network, ``auto`` = ``fast`` + ``gen_ppl``, ``all`` = ``auto`` +
``fid_inception`` (slow on a CPU), each restricted to the model's domain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from unmask.checks import check_integer
from unmask.metrics.exact import compare_to_joint, nll, reference_nll
from unmask.metrics.text import text_statistics

DOMAIN_METRICS = {
    "oracle": ("exact_nll", "joint_distance"),
    "image": ("fid_mnist", "fid_inception"),
    "text": ("text_stats", "gen_ppl"),
    "tokens": ("text_stats",),
}
ALL_METRICS = ("exact_nll", "joint_distance", "text_stats", "gen_ppl", "fid_mnist", "fid_inception")
KEYWORDS = {
    "fast": ("exact_nll", "joint_distance", "text_stats", "fid_mnist"),
    "auto": ("exact_nll", "joint_distance", "text_stats", "fid_mnist", "gen_ppl"),
    "all": ALL_METRICS,
}
NETWORK_METRICS = ("fid_mnist", "fid_inception", "gen_ppl")  # with a per-batch stage
DEFAULT_OPTIONS = {
    "fid_inception": {"reference_images": 10000, "batch_size": 50},
    "gen_ppl": {"model": None, "batch_size": 16, "max_length": 1024},
}


def domain_of(model: Any) -> str:
    """``oracle`` (exact law known), ``image`` (has a VQ decoder), ``text`` (has a tokenizer) or
    ``tokens``."""
    if hasattr(model, "log_prob") and hasattr(model, "sample"):
        return "oracle"
    if hasattr(model, "vq"):
        return "image"
    if hasattr(model, "tokenizer"):
        return "text"
    return "tokens"


FID_METRICS = ("fid_mnist", "fid_inception")


def supported_metrics(domain: str, model: Any, reference: str | None = "mnist") -> list[str]:
    """The metrics a model of ``domain`` supports; the FIDs need the dataset's ``reference``
    statistics (``mnist``: the MNIST test images, the only reference shipped)."""
    from unmask.models.oracle import TabularJoint

    supported = list(DOMAIN_METRICS[domain])
    if reference is None:
        supported = [name for name in supported if name not in FID_METRICS]
    if domain == "oracle" and not isinstance(model, TabularJoint):
        supported.remove("joint_distance")
    if "fid_mnist" in supported:
        from unmask.models.checkpoint import available

        if "mnist_classifier" not in available():
            supported.remove("fid_mnist")  # the classifier behind it is not shipped here
    return supported


def check_options(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Defaults filled in; each value validated, errors name ``metrics.<metric>.<key>``."""
    out = {name: dict(values) for name, values in DEFAULT_OPTIONS.items()}
    for name, values in (options or {}).items():
        if name not in DEFAULT_OPTIONS:
            raise ValueError(
                f"metrics.{name}: no such metric option group; known: {', '.join(DEFAULT_OPTIONS)}"
            )
        for key, value in (values or {}).items():
            if key not in DEFAULT_OPTIONS[name]:
                raise ValueError(
                    f"metrics.{name}.{key}: unknown option; known: {', '.join(DEFAULT_OPTIONS[name])}"
                )
            out[name][key] = value
    for name, key in (
        ("fid_inception", "reference_images"),
        ("fid_inception", "batch_size"),
        ("gen_ppl", "batch_size"),
        ("gen_ppl", "max_length"),
    ):
        value = out[name][key]
        minimum = 2 if key == "reference_images" else 1
        check_integer(f"metrics.{name}.{key}", value, minimum)
    judge = out["gen_ppl"]["model"]
    if judge is not None and not (Path(str(judge)) / "config.json").exists():
        raise ValueError(f"metrics.gen_ppl.model={judge!r}: not a local causal-LM directory (no config.json)")
    return out


def select_metrics(requested: Any, domain: str, model: Any, reference: str | None = "mnist") -> list[str]:
    """The metric names to compute, validated against the model's domain and the dataset's
    reference statistics (``ValueError`` naming ``metrics.names``)."""
    supported = supported_metrics(domain, model, reference)
    if isinstance(requested, str) and requested in KEYWORDS:
        names = [n for n in KEYWORDS[requested] if n in supported]
    else:
        names = [requested] if isinstance(requested, str) else list(requested)
        for name in names:
            if name not in ALL_METRICS:
                raise ValueError(
                    f"metrics.names: unknown metric {name!r}; known: {', '.join(ALL_METRICS)} "
                    f"(or {', '.join(KEYWORDS)})"
                )
            if name in FID_METRICS and reference is None and name in DOMAIN_METRICS[domain]:
                raise ValueError(
                    f"metrics.names: {name!r} needs reference statistics, and the dataset has "
                    "reference=null (dataset=mnist has them)"
                )
            if name not in supported:
                raise ValueError(
                    f"metrics.names: {name!r} needs another domain; model is a {domain} model, which "
                    f"supports {', '.join(supported) or 'no metric yet'}"
                )
    if "gen_ppl" in names and "text_stats" not in names:
        names.append("text_stats")  # a perplexity is never reported without the entropy
    return names


_LOADED: dict[tuple[str, str, str], Any] = {}  # (metric, its options, device) -> network


def load_network(name: str, options: dict[str, dict[str, Any]], device: torch.device | str) -> Any:
    if name == "fid_mnist":
        from unmask.metrics.fid import MNISTFeatureFID

        return MNISTFeatureFID(device=device)
    if name == "fid_inception":
        from unmask.metrics.fid import InceptionFID

        return InceptionFID(**options["fid_inception"], device=device)
    if name == "gen_ppl":
        from unmask.metrics.lm import GenerativePerplexity

        return GenerativePerplexity(**options["gen_ppl"], device=device)
    raise ValueError(f"metric {name!r} has no network")


class MetricSuite:
    """The selected metrics of one run, their options, and their networks (loaded lazily)."""

    def __init__(self, names: list[str], options: dict[str, dict[str, Any]], seed: int = 0):
        self.names, self.options, self.seed = list(names), options, seed
        self.device: torch.device | str = "cpu"
        self._networks: dict[str, Any] = {}

    def check_data(self) -> None:
        """Verify the data the metrics need (sha256 of the download; the judge LM's files) before
        any sampling."""
        if "fid_mnist" in self.names or "fid_inception" in self.names:
            from unmask.data.assets import fetch

            fetch("mnist")
        if "gen_ppl" in self.names:
            from unmask.metrics.lm import check_judge

            check_judge(self.options["gen_ppl"]["model"])

    @property
    def per_batch(self) -> list[str]:
        return [n for n in self.names if n in NETWORK_METRICS]

    def network(self, name: str) -> Any:
        """The network behind metric ``name``, loaded on first use and kept for the process: the
        jobs of a sweep run one after the other in one process and share it."""
        if name not in self._networks:
            key = (
                name,
                json.dumps(self.options.get(name, {}), sort_keys=True, default=str),
                str(self.device),
            )
            if key not in _LOADED:
                _LOADED[key] = load_network(name, self.options, self.device)
            self._networks[name] = _LOADED[key]
        return self._networks[name]

    def batch_features(self, model: Any, tokens: torch.Tensor, names: list[str] | None = None):
        """Per-sample features of one batch, ``{metric: tensor [B, ...]}`` on the CPU."""
        out: dict[str, torch.Tensor] = {}
        todo = self.per_batch if names is None else names
        if "fid_mnist" in todo or "fid_inception" in todo:
            images = model.decode(tokens)
            for name in ("fid_mnist", "fid_inception"):
                if name in todo:
                    out[name] = self.network(name).features(images)
        if "gen_ppl" in todo:
            total, count = self.network("gen_ppl").nll(model.decode(tokens))
            out["gen_ppl"] = torch.stack([total, count.double()], dim=1)
        return out

    def reduce(self, model: Any, tokens: torch.Tensor, features: dict[str, torch.Tensor]) -> dict[str, float]:
        """All metrics over the union of the samples (``features`` concatenated in batch order)."""
        out: dict[str, float] = {}
        if "exact_nll" in self.names:
            score, reference = nll(model, tokens), reference_nll(model, tokens.shape[0], self.seed)
            out |= {"nll": score.mean, "nll_stderr": score.stderr, "reference_nll": reference.mean}
        if "joint_distance" in self.names:
            comparison = compare_to_joint(model, tokens)
            out |= {
                "tv": comparison.tv,
                "kl": comparison.kl,
                "g_test_p_value": comparison.p_value,
                "exact_tv_q99": comparison.exact_tv_q99,
            }
        if "text_stats" in self.names:
            out |= text_statistics(tokens, model.vocab_size)
        for name in ("fid_mnist", "fid_inception"):
            if name in self.names:
                out |= self.network(name).score(features[name])
        if "gen_ppl" in self.names:
            from unmask.metrics.lm import perplexity

            judged = features["gen_ppl"]
            out["gen_ppl"] = perplexity(judged[:, 0], judged[:, 1].long())
            out["gen_ppl_judge_tokens"] = float(judged[:, 1].sum())
        return out
