"""scikit-learn's 8 x 8 digits (1797 images, grey levels 0..16) as token sequences, for fast tests.

``load_digits_tokens()`` returns ``(tokens [1797, 64] in 0..16, labels [1797])``: each pixel's grey
level is its token (V = 17, L = 64, grid 8 x 8). The data ships inside scikit-learn (a dev
dependency), so nothing is downloaded.
"""

from __future__ import annotations

import torch

VOCAB_SIZE, GRID = 17, (8, 8)


def load_digits_tokens() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is in the dev extra
        raise ImportError("the digits domain needs scikit-learn: pip install -e '.[dev]'") from err
    data = load_digits()
    tokens = torch.as_tensor(data.images.reshape(len(data.images), -1)).round().long()
    return tokens, torch.as_tensor(data.target).long()
