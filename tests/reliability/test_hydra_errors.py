"""Hydra's own errors (before the app runs: an override of a missing key, a missing config
option, a malformed override) end in one line and exit status 2, like the apps' own checks;
``HYDRA_FULL_ERROR=1`` still gives the full error."""

from __future__ import annotations

import os

import pytest

from hydra_cli import run_in_process
from unmask.cli import compare, evaluate
from unmask.errors import ONE_LINE

CASES = [
    (evaluate, ["hardware.foo=1"], "unmask-eval: error: Could not override 'hardware.foo'. To append"),
    (
        evaluate,
        ["sampler=nosuch"],
        "Could not find 'sampler/nosuch'. Available options in 'sampler': ancestral,",
    ),
    (evaluate, ["seed=[1"], "unmask-eval: error: no viable alternative at input '[1'"),
    (compare, ["foo=1"], "unmask-compare: error: Could not override 'foo'"),
]


@pytest.mark.parametrize(("app", "overrides", "message"), CASES)
def test_hydra_errors_are_one_line_with_status_2(tmp_path, capsys, monkeypatch, app, overrides, message):
    code, err = run_in_process(app, tmp_path / "run", overrides, capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert "Config search path" not in err and "HYDRA_FULL_ERROR" not in err
    assert "HYDRA_FULL_ERROR" not in os.environ and ONE_LINE not in os.environ  # restored


def test_hydra_full_error_still_raises(tmp_path, capsys, monkeypatch):
    from hydra.errors import ConfigCompositionException

    monkeypatch.setattr("sys.argv", ["evaluate", f"hydra.run.dir={tmp_path}", "hardware.foo=1"])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigCompositionException):
        evaluate.main()
