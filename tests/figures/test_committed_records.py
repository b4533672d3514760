"""The committed figures are the drawings of their archived records.

``experiments/results/runs/FIGURE`` holds the ``results.json`` of every run a committed sweep figure
was drawn from (``experiments/archive_records.py``). Drawing each archive again with
``unmask-figures FIGURE DIR`` must write tables (CSV and Markdown) equal, character for character,
to the committed ones in ``experiments/results/figures``: no committed table was edited by hand,
left behind by a model change or drawn from runs that are not archived. Also checked: the archiver
copies records byte for byte, keeps a model folder's name, and replaces an archive only when every
record is good and no job lacks its record. The quickstart's seed 1 and 2 tables are checked the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "experiments" / "results" / "runs"
COMMITTED = ROOT / "experiments" / "results" / "figures"
SWEEP_FIGURES = (
    "quickstart",
    "fig_maskgit_vs_moment",
    "fig_partial_caching",
    "fig_hybrid",
    "fig_model_panels",
)


# The quickstart at seeds 1 and 2 (README, "Does it hold on other seeds?"): its resolved and summary
# tables are committed as quickstart_seed{1,2}_*.csv.
SEED_ARCHIVES = {"quickstart_seed1": 1, "quickstart_seed2": 2}


def archived() -> list[str]:
    return sorted(p.name for p in ARCHIVE.iterdir() if p.is_dir() and not p.name.startswith("."))


def archive_module():
    import importlib.util

    path = ROOT / "experiments" / "archive_records.py"
    spec = importlib.util.spec_from_file_location("archive_records", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_sweep_figure_has_its_records_archived():
    assert set(SWEEP_FIGURES) | set(SEED_ARCHIVES) <= set(archived())


@pytest.mark.parametrize("figure", SWEEP_FIGURES)
def test_a_committed_figure_is_what_its_archived_records_draw(figure, tmp_path):
    from unmask.cli.figures import main

    assert main([figure, str(ARCHIVE / figure), "--out", str(tmp_path)]) == 0
    tables = sorted([*tmp_path.glob("*.csv"), *tmp_path.glob("*.md")])
    assert any(table.suffix == ".csv" for table in tables)
    for table in tables:
        assert (COMMITTED / table.name).exists(), f"{table.name} is drawn but not committed"
        assert table.read_text() == (COMMITTED / table.name).read_text(), f"{table.name} differs"


@pytest.mark.parametrize("archive", sorted(SEED_ARCHIVES))
def test_the_quickstart_seed_tables_are_what_their_archived_records_draw(archive, tmp_path):
    from unmask.cli.figures import main

    seeds = {json.loads(p.read_text())["config"]["seed"] for p in (ARCHIVE / archive).rglob("results.json")}
    assert seeds == {SEED_ARCHIVES[archive]}
    assert main(["quickstart", str(ARCHIVE / archive), "--out", str(tmp_path)]) == 0
    for table in ("resolved.csv", "summary.csv"):
        drawn = (tmp_path / f"quickstart_{table}").read_text()
        assert drawn == (COMMITTED / f"{archive}_{table}").read_text(), f"{archive}_{table} differs"


def record(model: str | None, status: str = "complete") -> bytes:
    config = {"model": {"name": model}} if model else {"figure": {"preset": "fig_x"}}
    return json.dumps({"status": status, "config": config, "metrics": {"fid": 1.5}}).encode()


def test_the_archiver_keeps_bytes_and_layout_and_replaces_an_archive_only_when_all_is_good(tmp_path):
    archiver = archive_module()
    sweep = tmp_path / "sweep"
    for model, job in (("mnist", "0"), ("mnist", "1"), ("shakespeare", "0")):
        (sweep / model / job).mkdir(parents=True)
        (sweep / model / job / "results.json").write_bytes(record(model))
        (sweep / model / job / "samples.pt").write_bytes(b"not archived")
    root = tmp_path / "runs"
    target = archiver.archive("fig_x", [sweep], root=root)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == ["mnist/0/results.json", "mnist/1/results.json", "shakespeare/0/results.json"]
    assert (target / "mnist/1/results.json").read_bytes() == record("mnist")

    # one model's folder (a rerun of the text side) together with the archive's other model
    rerun = tmp_path / "rerun" / "shakespeare"
    (rerun / "0").mkdir(parents=True)
    (rerun / "0" / "results.json").write_bytes(record("shakespeare") + b" ")
    archiver.archive("fig_x", [rerun, target / "mnist"], root=root)
    assert (target / "shakespeare/0/results.json").read_bytes() == record("shakespeare") + b" "
    assert (target / "mnist/0/results.json").exists()

    # a bad record stops it with one line naming the file, and the archive stays as it was
    before = {p: p.read_bytes() for p in target.rglob("results.json")}
    (rerun / "1").mkdir()
    (rerun / "1" / "results.json").write_bytes(record("shakespeare", status="running"))
    with pytest.raises(SystemExit, match=r"shakespeare/1/results.json \(status 'running'\)"):
        archiver.archive("fig_x", [rerun, target / "mnist"], root=root)
    assert {p: p.read_bytes() for p in target.rglob("results.json")} == before
    assert sorted(p.name for p in root.iterdir()) == ["fig_x"]

    # so does a job that Hydra started and that left no record (crashed, cancelled, running)
    (rerun / "1" / "results.json").unlink()
    (rerun / "1" / ".hydra").mkdir()
    (rerun / "1" / ".hydra" / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(SystemExit, match=r"shakespeare/1 \(no results.json"):
        archiver.archive("fig_x", [rerun, target / "mnist"], root=root)
    assert {p: p.read_bytes() for p in target.rglob("results.json")} == before

    # a computed figure's record sits at the top of its archive
    computed = tmp_path / "computed"
    computed.mkdir()
    (computed / "results.json").write_bytes(record(None))
    assert (archiver.archive("fig_y", [computed], root=root) / "results.json").exists()
