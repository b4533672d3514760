"""The peers' presets (src/unmask/conf/sampler/) through the real CLIs: unmask-eval on both shipped models,
unmask-compare side by side with this project's samplers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from hydra_cli import run_cli
from unmask.config import CONF_DIR
from unmask.samplers import peer_samplers


def preset_samplers() -> dict[str, str]:
    """Preset name -> the sampler it builds (through its defaults list), for every preset."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return {
            p.stem: compose("eval", overrides=[f"sampler={p.stem}"]).sampler.name
            for p in sorted((Path(CONF_DIR) / "sampler").glob("*.yaml"))
        }


# preset file name -> the sampler it builds, for the presets of peers
PRESETS = {stem: name for stem, name in preset_samplers().items() if name in peer_samplers()}


def test_every_peer_has_a_preset():
    assert set(PRESETS.values()) == set(peer_samplers())
    assert {"llada", "llada_random", "fast_dllm", "fast_dllm_factor", "maskgit_jax"} <= set(PRESETS)


@pytest.mark.slow
def test_every_peer_preset_runs_on_both_shipped_models(tmp_path):
    result = run_cli(
        "unmask.cli.evaluate",
        tmp_path,
        "model=mnist,shakespeare",
        f"sampler={','.join(PRESETS)}",
        "num_samples=4",
        "batch_size=4",
        "metrics=fast",
        "save_samples=false",
        multirun=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = set()
    for path in tmp_path.glob("*/results.json"):
        record = json.loads(path.read_text())
        assert record["status"] == "complete"
        seen.add((record["config"]["model"]["name"], record["config"]["sampler"]["name"]))
    assert seen == {(m, n) for m in ("mnist", "shakespeare") for n in PRESETS.values()}


def test_compare_lists_the_peers_beside_our_samplers(tmp_path: Path):
    result = run_cli(
        "unmask.cli.compare", tmp_path, "num_samples=20", "batch_size=20", "steps=[4]", "include_peers=true"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["sampler"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"][1:]}
    assert {f"peer:{name}" for name in peer_samplers()} <= set(rows)
    assert {"moment", "maskgit", "hybrid"} <= set(rows)
    assert rows["peer:llada"]["nfe"] == 4 and rows["peer:maskgit_jax"]["nfe"] <= 4
