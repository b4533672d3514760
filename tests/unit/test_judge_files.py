"""The judge LM's files are checked before it is used: a torn or altered file is named, and the
converted default judge (one sha256 record per file) is converted again when a file no longer
matches its record. The conversion from the GGUF is replaced by writing a tiny judge."""

from __future__ import annotations

import logging
import re
import shutil

import pytest

from tiny_judge import write_tiny_judge
from unmask.io import seal
from unmask.metrics import lm


@pytest.fixture(scope="module")
def judge_files(tmp_path_factory):
    return write_tiny_judge(tmp_path_factory.mktemp("judge") / "tiny")


def test_a_whole_judge_passes_and_each_torn_file_is_named(judge_files, tmp_path):
    assert lm.check_judge(judge_files) == judge_files
    folder = shutil.copytree(judge_files, tmp_path / "judge")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(
        lm.JudgeError, match=rf"{re.escape(str(weights))} \(\d+ bytes\) is torn or not safetensors"
    ):
        lm.check_judge(folder)
    weights.unlink()
    with pytest.raises(
        lm.JudgeError, match=rf"no weights file \(\*\.safetensors or \*\.bin\) in {re.escape(str(folder))}"
    ):
        lm.check_judge(folder)


def test_a_file_with_a_record_must_match_it(judge_files, tmp_path):
    folder = shutil.copytree(judge_files, tmp_path / "judge")
    weights = folder / "model.safetensors"
    seal(weights)
    assert lm.check_judge(folder) == folder
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # same size, still a readable safetensors file: only the record can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(
        lm.JudgeError, match=rf"{re.escape(str(weights))}: sha256 [0-9a-f]+ does not match its record"
    ):
        lm.check_judge(folder)


def test_default_judge_is_converted_once_and_again_when_torn(judge_files, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("UNMASK_DATA", str(tmp_path))
    conversions = []

    def convert(target):
        conversions.append(target)
        shutil.copytree(judge_files, target, dirs_exist_ok=True)

    monkeypatch.setattr(lm, "convert_gguf", convert)
    folder = lm.check_judge()
    assert folder.parent == tmp_path / "lm" and len(conversions) == 1
    assert all((folder / f"{p.name}.sha256").exists() for p in judge_files.iterdir())
    assert lm.check_judge() == folder and len(conversions) == 1  # sealed: used as it is
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="unmask.metrics.lm"):
        assert lm.check_judge() == folder
    assert len(conversions) == 2 and "does not match its record" in caplog.text
    assert weights.read_bytes() == (judge_files / "model.safetensors").read_bytes()
    assert not [p for p in folder.parent.iterdir() if p != folder]  # no temporary or stale copy left
