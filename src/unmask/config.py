"""Where the Hydra configs live (one definition for every entry point and for ``unmask.figures``).

The configs ship inside the package (``src/unmask/conf``; ``conf/`` at the top of a clone is a
link to it), so an installed ``unmask`` finds them wherever it is installed. A user's own
configs are added with Hydra's ``--config-dir DIR`` (``DIR/sampler/mine.yaml`` then answers
``sampler=mine``, and a file of the same name there overrides the shipped one). The configs use
no custom resolver: a call budget is spent by ``unmask.samplers.budget``.
"""

from __future__ import annotations

from pathlib import Path

CONF_DIR = str(Path(__file__).resolve().parent / "conf")
