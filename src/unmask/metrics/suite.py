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
``fid_mnist`` (fast domain FID + label entropy) and ``fid_inception`` (both against the MNIST test
images: ``dataset.reference=mnist``), ``fid`` (Inception FID of any image model against the
dataset's reference file: ``dataset.reference=<.npz or folder>``). Keywords: ``fast`` = the metrics
that need no downloaded network, ``auto`` = ``fast`` + ``gen_ppl`` + ``fid``, ``all`` = ``auto`` +
``fid_inception`` (slow on a CPU), each restricted to the model's domain and its dataset's
reference.

Every metric estimated from the samples also has ``<name>_stderr``, and ``<name>_ci95 = [low,
high]`` where it is bootstrapped (``unmask.metrics.intervals`` states the rules;
``metrics.bootstrap.replicates`` resamples, seeded by the run's seed, over the joined samples in
batch order, so the intervals do not depend on the number of processes either). Counts
(``gen_ppl_judge_tokens``), the G-test p-value and ``exact_tv_q99`` have no interval.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from unmask.checks import check_integer
from unmask.metrics.exact import bootstrap_distances, compare_to_joint, nll, reference_nll
from unmask.metrics.intervals import DEFAULT_REPLICATES, Bootstrap, bootstrapped, ratio_stderr
from unmask.metrics.text import text_statistics

DOMAIN_METRICS = {
    "oracle": ("exact_nll", "joint_distance"),
    "image": ("fid_mnist", "fid_inception", "fid"),
    "text": ("text_stats", "gen_ppl"),
    "tokens": ("text_stats",),
}
ALL_METRICS = ("exact_nll", "joint_distance", "text_stats", "gen_ppl", "fid_mnist", "fid_inception", "fid")
KEYWORDS = {
    "fast": ("exact_nll", "joint_distance", "text_stats", "fid_mnist"),
    "auto": ("exact_nll", "joint_distance", "text_stats", "fid_mnist", "gen_ppl", "fid"),
    "all": ALL_METRICS,
}
IMAGE_METRICS = ("fid_mnist", "fid_inception", "fid")  # decode, then a feature network
NETWORK_METRICS = (*IMAGE_METRICS, "gen_ppl")  # with a per-batch stage
EOS_RULES = ("all", "first")  # gen_ppl.eos (unmask.metrics.lm)
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "fid_inception": {"reference_images": 10000, "batch_size": 50},
    "fid": {"batch_size": 50},
    "gen_ppl": {
        "model": None,
        "batch_size": 16,
        "max_length": 1024,
        "context": None,
        "special_tokens": False,
        "eos": "all",
    },
    "bootstrap": {"replicates": DEFAULT_REPLICATES},
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


FID_METRICS = ("fid_mnist", "fid_inception")  # against the MNIST test images (reference=mnist)


TEXT_REFERENCES = ("shakespeare",)  # real text for gen_ppl's data line: the held-out plays


def reference_kind(reference: str | None) -> str | None:
    """``None``, ``mnist``, ``text`` (``shakespeare`` or a ``.txt`` path: real text for
    ``gen_ppl``'s data line) or ``file`` (any other value of ``dataset.reference`` is a path)."""
    if reference in (None, "mnist"):
        return reference
    return "text" if reference in TEXT_REFERENCES or str(reference).endswith(".txt") else "file"


def reference_text(reference: str) -> str:
    """The real text of a text reference (``reference_kind`` = ``text``)."""
    if reference == "shakespeare":
        from unmask.data.shakespeare import load_text

        return load_text("val")
    try:
        text = Path(reference).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"dataset.reference={reference}: not a readable UTF-8 text file ({err})") from None
    if not text:
        raise ValueError(f"dataset.reference={reference}: the text file is empty")
    return text


def random_windows(text: str, count: int, length: int, seed: int) -> list[str]:
    """``count`` windows of ``length`` characters at uniform random starts (seeded) in ``text``."""
    length = max(1, min(length, len(text)))
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(text) - length + 1, (count,), generator=generator).tolist()
    return [text[s : s + length] for s in starts]


def supported_metrics(domain: str, model: Any, reference: str | None = "mnist") -> list[str]:
    """The metrics a model of ``domain`` supports; the FIDs need the dataset's ``reference``
    statistics: ``fid_mnist`` and ``fid_inception`` the MNIST test images (``mnist``), ``fid`` a
    file of statistics or images (a path)."""
    from unmask.models.oracle import TabularJoint

    supported = list(DOMAIN_METRICS[domain])
    kind = reference_kind(reference)
    if kind != "mnist":
        supported = [name for name in supported if name not in FID_METRICS]
    if kind != "file" and "fid" in supported:
        supported.remove("fid")
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
        ("fid", "batch_size"),
        ("gen_ppl", "batch_size"),
        ("gen_ppl", "max_length"),
        ("bootstrap", "replicates"),
    ):
        value = out[name][key]
        minimum = {"reference_images": 2, "replicates": 0}.get(key, 1)
        check_integer(f"metrics.{name}.{key}", value, minimum)
    check_integer("metrics.gen_ppl.context", out["gen_ppl"]["context"], 2, or_none="null (no split)")
    special, eos = out["gen_ppl"]["special_tokens"], out["gen_ppl"]["eos"]
    if not isinstance(special, bool):
        raise ValueError(f"metrics.gen_ppl.special_tokens={special!r} must be true or false")
    if eos not in EOS_RULES:
        raise ValueError(f"metrics.gen_ppl.eos={eos!r} must be one of {', '.join(EOS_RULES)}")
    judge = out["gen_ppl"]["model"]
    if judge == "???":
        raise ValueError(
            "metrics.gen_ppl.model: this metrics preset needs its judge LM as a local directory "
            "(metrics=mdlm_owt: gpt2-large, metrics.gen_ppl.model=/path/to/gpt2-large)"
        )
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
            if name in IMAGE_METRICS and domain == "image":
                check_reference_kind(name, reference)
            if name not in supported:
                raise ValueError(
                    f"metrics.names: {name!r} needs another domain; model is a {domain} model, which "
                    f"supports {', '.join(supported) or 'no metric yet'}"
                )
    if "gen_ppl" in names and "text_stats" not in names:
        names.append("text_stats")  # a perplexity is never reported without the entropy
    return names


def check_reference_kind(name: str, reference: str | None) -> None:
    """``ValueError`` naming ``metrics.names`` if FID ``name`` cannot use the dataset's reference."""
    kind = reference_kind(reference)
    if name in FID_METRICS and kind is None:
        raise ValueError(
            f"metrics.names: {name!r} needs reference statistics, and the dataset has "
            "reference=null (dataset=mnist has them)"
        )
    if name in FID_METRICS and kind == "file":
        raise ValueError(
            f"metrics.names: {name!r} compares to the MNIST test images (dataset.reference=mnist); "
            f"this dataset's reference is the file {reference}: use fid"
        )
    if name == "fid" and kind != "file":
        raise ValueError(
            f"metrics.names: 'fid' needs a reference file, and the dataset has reference="
            f"{reference or 'null'} (dataset.reference=/path/to/stats.npz with mu and sigma, or "
            "images; for MNIST: fid_inception)"
        )


FEATURE_COLUMNS = {"gen_ppl": 3}  # per sample: NLL sum, judge tokens, characters


def current_feature(name: str, stored: torch.Tensor) -> bool:
    """Whether a shard's stored features of metric ``name`` have this version's layout (a shard of
    an earlier version, e.g. judge scores without the character counts, is recomputed, not read)."""
    columns = FEATURE_COLUMNS.get(name)
    return columns is None or (stored.dim() == 2 and stored.shape[1] == columns)


_LOADED: dict[tuple[str, str, str], Any] = {}  # (metric, its options, device) -> network
_DATA_LINES: dict[tuple, dict[str, float]] = {}  # (reference, n, length, seed, judge options) -> scores


def load_network(
    name: str,
    options: dict[str, dict[str, Any]],
    device: torch.device | str,
    reference: str | None = None,
) -> Any:
    if name == "fid":
        from unmask.metrics.fid import ReferenceFID

        return ReferenceFID(str(reference), **options["fid"], device=device)
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

    def __init__(
        self,
        names: list[str],
        options: dict[str, dict[str, Any]],
        seed: int = 0,
        reference: str | None = None,
    ):
        self.names, self.options, self.seed, self.reference = list(names), options, seed, reference
        self.device: torch.device | str = "cpu"
        self._networks: dict[str, Any] = {}

    @property
    def bootstrap(self) -> Bootstrap:
        replicates = self.options.get("bootstrap", DEFAULT_OPTIONS["bootstrap"])["replicates"]
        return Bootstrap(replicates, self.seed)

    def check_data(self) -> None:
        """Verify the data the metrics need (sha256 of the download; the reference file's keys
        and shapes; the judge LM's files) before any sampling."""
        from unmask.data.assets import fetch

        if "fid_mnist" in self.names or "fid_inception" in self.names:
            fetch("mnist")
        if "fid" in self.names:
            from unmask.metrics import fid
            from unmask.metrics.reference import check_reference

            check_reference(str(self.reference), fid.INCEPTION_DIM)
        if "gen_ppl" in self.names:
            from unmask.metrics.lm import check_judge

            options = self.options["gen_ppl"]
            check_judge(options["model"], needs_eos=options["eos"] == "first")
            if reference_kind(self.reference) == "text":
                reference_text(str(self.reference))

    @property
    def per_batch(self) -> list[str]:
        return [n for n in self.names if n in NETWORK_METRICS]

    def network(self, name: str) -> Any:
        """The network behind metric ``name``, loaded on first use and kept for the process: the
        jobs of a sweep run one after the other in one process and share it."""
        if name not in self._networks:
            settings = dict(self.options.get(name, {}))
            if name == "fid":
                settings["reference"] = self.reference
            key = (name, json.dumps(settings, sort_keys=True, default=str), str(self.device))
            if key not in _LOADED:
                _LOADED[key] = load_network(name, self.options, self.device, self.reference)
            self._networks[name] = _LOADED[key]
        return self._networks[name]

    def batch_features(self, model: Any, tokens: torch.Tensor, names: list[str] | None = None):
        """Per-sample features of one batch, ``{metric: tensor [B, ...]}`` on the CPU."""
        out: dict[str, torch.Tensor] = {}
        todo = self.per_batch if names is None else names
        if any(name in todo for name in IMAGE_METRICS):
            images = model.decode(tokens)
            for name in IMAGE_METRICS:
                if name in todo:
                    out[name] = self.network(name).features(images)
        if "gen_ppl" in todo:
            out["gen_ppl"] = judged_texts(self.network("gen_ppl"), model.decode(tokens))
        return out

    def reduce(self, model: Any, tokens: torch.Tensor, features: dict[str, torch.Tensor]) -> dict[str, Any]:
        """All metrics over the union of the samples (``features`` concatenated in batch order),
        each estimate with its interval (module docstring)."""
        out: dict[str, Any] = {}
        bootstrap = self.bootstrap
        if "exact_nll" in self.names:
            score, reference = nll(model, tokens), reference_nll(model, tokens.shape[0], self.seed)
            out |= {"nll": score.mean, "nll_stderr": score.stderr}
            out |= {"reference_nll": reference.mean, "reference_nll_stderr": reference.stderr}
        if "joint_distance" in self.names:
            comparison = compare_to_joint(model, tokens)
            tv, kl = bootstrap_distances(model, tokens, bootstrap.counts(tokens.shape[0]))
            out |= bootstrapped("tv", comparison.tv, tv) | bootstrapped("kl", comparison.kl, kl)
            out |= {"g_test_p_value": comparison.p_value, "exact_tv_q99": comparison.exact_tv_q99}
        if "text_stats" in self.names:
            out |= text_statistics(tokens, model.vocab_size, bootstrap)
        for name in IMAGE_METRICS:
            if name in self.names:
                out |= self.network(name).score(features[name], bootstrap)
        if "gen_ppl" in self.names:
            out |= perplexity_metrics(features["gen_ppl"])
            if reference_kind(self.reference) == "text":
                out |= self.text_data_line(features["gen_ppl"])
        return out

    def text_data_line(self, judged: torch.Tensor) -> dict[str, float]:
        """The judge's score of as many random windows of the reference text as there are samples,
        each as long as the samples' mean length in characters, drawn with the run's seed (so runs
        of other seeds show the line's own sampling spread): ``gen_ppl_data_same_n`` and
        ``gen_bits_per_char_data_same_n``, each with its standard error."""
        n, length = judged.shape[0], round(float(judged[:, 2].mean())) if judged.shape[0] else 0
        key = (str(self.reference), n, length, self.seed, json.dumps(self.options["gen_ppl"], sort_keys=True))
        if key not in _DATA_LINES:  # the runs of a sweep at one n and seed share one draw: score it once
            windows = random_windows(reference_text(str(self.reference)), n, length, self.seed)
            _DATA_LINES[key] = perplexity_metrics(judged_texts(self.network("gen_ppl"), windows))
        real = _DATA_LINES[key]
        return {
            f"{name}_data_same_n{suffix}": real[f"{name}{suffix}"]
            for name in ("gen_ppl", "gen_bits_per_char")
            for suffix in ("", "_stderr")
        }


def judged_texts(judge: Any, texts: list[str]) -> torch.Tensor:
    """``[N, 3]`` float64 per text: the judge's NLL sum (nats), the judge tokens scored, and the
    characters it saw (``FEATURE_COLUMNS``; what ``perplexity_metrics`` reads)."""
    total, count = judge.nll(texts)
    return torch.stack([total, count.double(), judge.characters(texts).double()], dim=1)


def perplexity_metrics(judged: torch.Tensor) -> dict[str, float]:
    """``gen_ppl`` (token-weighted), ``gen_bits_per_token`` (its log2) and ``gen_bits_per_char``
    (the NLL over the characters the judge saw) with their delta-method standard errors, and
    ``gen_ppl_judge_tokens``, from the per-sample ``[N, 3]`` (NLL sum, tokens, characters)."""
    from unmask.metrics.lm import perplexity

    total, count, chars = judged[:, 0].double(), judged[:, 1].double(), judged[:, 2].double()
    ppl, stderr = perplexity(total, count.long()), ratio_stderr(total, count)
    tokens, characters = float(count.sum()), float(chars.sum())
    bits = float(total.sum()) / tokens / math.log(2) if tokens else math.nan
    per_char = float(total.sum()) / characters / math.log(2) if characters else math.nan
    return {
        "gen_ppl": ppl,
        "gen_ppl_stderr": ppl * stderr,
        "gen_bits_per_token": bits,
        "gen_bits_per_token_stderr": stderr / math.log(2),
        "gen_bits_per_char": per_char,
        "gen_bits_per_char_stderr": ratio_stderr(total, chars) / math.log(2) if characters else math.nan,
        "gen_ppl_judge_tokens": tokens,
    }
