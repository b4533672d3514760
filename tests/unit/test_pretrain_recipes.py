"""`make pretrain` names the recipes that made the shipped checkpoints: composing each one (the Hydra
config `train` with `pretrain=<recipe>`) gives exactly the network and training settings recorded in
the shipped card, stage by stage along the card's `init_from` lineage. A recipe edited, dropped or
left out of the Makefile after its checkpoint shipped fails here, before anyone spends hours
retraining from it."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from unmask.cli.train import network_arguments
from unmask.config import CONF_DIR
from unmask.models.checkpoint import CHECKPOINT_DIR

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
TRAINING_KEYS = ("steps", "batch_size", "lr", "seed", "objective", "ema")


def pretrain_recipes() -> list[str]:
    """The recipes of the Makefile's `pretrain` target, in the order it runs them."""
    lines = MAKEFILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("pretrain:"))
    body = []
    for line in lines[start + 1 :]:
        if line and not line.startswith("\t"):
            break
        body.append(line)
    return re.findall(r"pretrain=(\w+)", "\n".join(body))


def composed(recipe: str) -> dict:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"pretrain={recipe}"])
    return OmegaConf.to_container(cfg, resolve=True)


@functools.cache
def stages_by_checkpoint() -> dict[str, list[dict]]:
    stages: dict[str, list[dict]] = {}
    for recipe in pretrain_recipes():
        cfg = composed(recipe)
        stages.setdefault(cfg["name"], []).append({"recipe": recipe, **cfg})
    return stages


def card_lineage(card: dict) -> list[dict]:
    """The card's training records, oldest stage first."""
    chain, training = [], card["training"]
    while training is not None:
        chain.append(training)
        training = (training.get("init_from") or {}).get("training")
    return chain[::-1]


def network(card: dict, net: dict) -> dict:
    """A denoiser's network settings with their defaults filled in (`network_arguments`, as `init_from`
    compares them): a card written after a setting was added (`dropout`) records it, a recipe that
    leaves it at its default does not."""
    return network_arguments(net) if card["kind"] == "denoiser" else net


def test_the_makefile_trains_every_shipped_checkpoint():
    shipped = {path.stem for path in CHECKPOINT_DIR.glob("*.json")}
    assert shipped == set(stages_by_checkpoint()), "make pretrain must name a recipe for each shipped card"


@pytest.mark.parametrize("name", sorted(p.stem for p in CHECKPOINT_DIR.glob("*.json")))
def test_each_stage_composes_to_what_the_shipped_card_records(name):
    card = json.loads((CHECKPOINT_DIR / f"{name}.json").read_text())
    stages = stages_by_checkpoint()[name]
    lineage = card_lineage(card)
    assert len(stages) == len(lineage), (
        f"{name}: the card records {len(lineage)} stage(s), make pretrain runs {len(stages)}: "
        f"{[s['recipe'] for s in stages]}"
    )
    for stage, record in zip(stages, lineage, strict=True):
        wanted = {key: record[key] for key in TRAINING_KEYS}
        got = {
            "steps": stage["max_steps"],
            "batch_size": stage["batch_size"],
            "lr": stage["lr"],
            "seed": stage["seed"],
            "objective": stage.get("objective"),
            "ema": stage.get("ema"),
        }
        assert got == wanted, f"{name}: recipe {stage['recipe']} is not the stage its card records"
        assert (stage.get("init_from") is not None) == (record is not lineage[0]), stage["recipe"]
    assert network(card, stages[-1]["net"]) == network(card, card["config"]), (
        f"{name}: the last recipe's network is not the shipped one"
    )
