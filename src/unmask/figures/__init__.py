"""The paper figures and the main job's summary (``unmask-figures``).

Each figure is a module with ``NAME`` (= its ``experiment=`` preset in conf/experiment/),
``TITLE``, ``NEEDS`` (the runs it reads, for the message when there are none), ``RUNTIME`` (on
the 2-core CPU), ``COMPUTED`` (True: an exact computation done by ``compute(settings)``, no
sampling run), ``select(runs)``, ``point(run)`` (the sweep point a run stands for: two runs at
one point are an error), ``collect(runs) -> [Table, ...]`` and ``draw(tables, out_dir)``;
optionally ``SHARED``, the settings all its runs must share (default ``("seed",)``).
"""

from unmask.figures import (
    fig_equivalence,
    fig_hybrid,
    fig_implicit_temperature,
    fig_maskgit_vs_moment,
    fig_model_panels,
    fig_one_by_one,
    fig_oracle_trajectories,
    fig_partial_caching,
    quickstart,
)

FIGURES = {
    module.NAME: module
    for module in (
        quickstart,
        fig_maskgit_vs_moment,
        fig_implicit_temperature,
        fig_equivalence,
        fig_one_by_one,
        fig_partial_caching,
        fig_hybrid,
        fig_oracle_trajectories,
        fig_model_panels,
    )
}
