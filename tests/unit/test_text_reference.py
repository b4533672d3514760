"""The real-text line of ``gen_ppl``: which references are text, and the seeded random windows."""

import pytest

from unmask.data.shakespeare import load_text
from unmask.data.spec import DatasetSpec
from unmask.metrics.suite import random_windows, reference_kind, reference_text


def test_reference_kinds():
    assert [reference_kind(r) for r in (None, "mnist", "shakespeare", "/x/own.txt", "/x/stats.npz")] == [
        None,
        "mnist",
        "text",
        "text",
        "file",
    ]
    assert DatasetSpec(name="s", reference="shakespeare").reference == "shakespeare"


def test_windows_are_uniform_seeded_slices_of_the_text():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    windows = random_windows(text, 200, 30, seed=3)
    assert windows == random_windows(text, 200, 30, seed=3) != random_windows(text, 200, 30, seed=4)
    assert all(len(w) == 30 and w in text for w in windows)
    starts = [text.index(w) for w in windows]  # the alphabet repeats every 26: index mod 26 is the start's
    assert len({s % 26 for s in starts}) == 26, "every start residue is drawn (uniform starts, seed 3)"
    assert random_windows("abc", 2, 10, seed=0) == ["abc", "abc"], "a window never exceeds the text"


def test_shakespeare_reference_is_the_held_out_plays_and_a_bad_file_is_named(tmp_path):
    assert reference_text("shakespeare") == load_text("val")
    missing = tmp_path / "none.txt"
    with pytest.raises(ValueError, match=f"dataset.reference={missing}: not a readable UTF-8 text file"):
        reference_text(str(missing))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="the text file is empty"):
        reference_text(str(tmp_path / "empty.txt"))


def test_judge_features_of_an_older_layout_are_recomputed_not_read():
    import torch

    from unmask.evaluation import gather_features

    class Suite:
        per_batch = ("gen_ppl",)

        def batch_features(self, model, tokens, names):
            return {"gen_ppl": torch.ones(tokens.shape[0], 3)}

    current = {"tokens": torch.zeros(2, 4), "features": {"gen_ppl": torch.full((2, 3), 7.0)}}
    older = {"tokens": torch.zeros(3, 4), "features": {"gen_ppl": torch.full((3, 2), 7.0)}}  # no characters
    out = gather_features(Suite(), None, [current, older])["gen_ppl"]
    assert out.shape == (5, 3) and out[:2].eq(7).all() and out[2:].eq(1).all()
