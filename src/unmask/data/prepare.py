"""``python -m unmask.data.prepare`` (``make data``): fetch, verify and prepare every dataset."""

from __future__ import annotations

import logging

from unmask.data.assets import data_dir
from unmask.data.mnist import prepare_mnist
from unmask.data.shakespeare import prepare_shakespeare

log = logging.getLogger("unmask.data")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("data directory: %s (override with UNMASK_DATA)", data_dir())
    log.info("mnist: %s", prepare_mnist())
    log.info("shakespeare: %s", prepare_shakespeare())


if __name__ == "__main__":
    main()
