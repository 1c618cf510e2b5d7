"""JITGRAD_LOG=recompiles,guards,trace,llvm: one logger per topic under `jitgrad.`; each retrace logged
with the failed guard or changed environment entry, its old and new value and the user's source line."""
import logging

import numpy as np
import pytest

import jitgrad

SCALE = 0.5


def loss(w):
    if w.sum() > 0:
        return np.sum(w * w) * SCALE
    return np.sum(np.sin(w))


def _calls():
    global SCALE
    g = jitgrad.jit_grad(loss)
    g(np.ones(3))
    g(-np.ones(3))                 # the branch guard fails: a retrace
    SCALE = 2.0
    try:
        g(np.ones(3))              # the global changed (path 1), the guard fails (path 2)
    finally:
        SCALE = 0.5
    g(np.ones(4))                  # a new signature
    return g


@pytest.fixture
def quiet_disk(monkeypatch):
    monkeypatch.setenv("JITGRAD_DISK_CACHE", "0")


def test_topics_written_to_the_log_file(quiet_disk, monkeypatch, tmp_path):
    log = tmp_path / "log.txt"
    monkeypatch.setenv("JITGRAD_LOG", "recompiles,guards,trace")
    monkeypatch.setenv("JITGRAD_LOG_FILE", str(log))
    g = _calls()
    text = log.read_text()
    recompiles = [block for block in text.split("[jitgrad.") if block.startswith("recompiles]")]
    assert len(recompiles) == 4 == g.cache_info().traces
    assert "tracing loss" in recompiles[0] and "new signature float64[3]" in recompiles[0]
    assert ("guard failed: truth value of a traced value: old value True, new value False" in recompiles[1]
            and "test_logs.py:14: if w.sum() > 0:" in recompiles[1])
    assert "none of its 2 paths holds" in recompiles[2]
    assert "environment changed: global 'SCALE': old 0.5, new 2.0" in recompiles[2]
    assert "test_logs.py:15: return np.sum(w * w) * SCALE" in recompiles[2]
    assert "old value False, new value True" in recompiles[2]
    assert "new signature float64[4]" in recompiles[3]
    guards = [block for block in text.split("[jitgrad.") if block.startswith("guards]")]
    assert len(guards) == 4
    assert "guard: truth value of a traced value (expected False) at" in guards[1]
    assert "global 'SCALE' (value 2.0" in guards[2]
    traces = [block for block in text.split("[jitgrad.") if block.startswith("trace]")]
    assert len(traces) == 4 and all("trace (%0: f64[" in block for block in traces)
    assert "= cos %0" in traces[1] and "cos" not in traces[0]     # (the gradient of sum(sin w))
    assert "llvm]" not in text                       # a topic not named is not logged


def test_off_by_default(quiet_disk, monkeypatch, capsys):
    monkeypatch.delenv("JITGRAD_LOG", raising=False)
    _calls()
    assert "jitgrad" not in capsys.readouterr().err


def test_through_logging_alone(quiet_disk, monkeypatch, caplog):
    monkeypatch.delenv("JITGRAD_LOG", raising=False)
    with caplog.at_level(logging.INFO, logger="jitgrad.recompiles"):
        _calls()
    messages = [r.getMessage() for r in caplog.records if r.name == "jitgrad.recompiles"]
    assert len(messages) == 4 and "old value True, new value False" in messages[1]
    assert not [r for r in caplog.records if r.name == "jitgrad.guards"]


def test_all_and_stderr(quiet_disk, monkeypatch, capsys):
    monkeypatch.setenv("JITGRAD_LOG", "all")
    monkeypatch.delenv("JITGRAD_LOG_FILE", raising=False)
    jitgrad.jit_grad(lambda x: np.sum(np.exp(x)))(np.ones(2) * 0.25)
    err = capsys.readouterr().err
    for topic in ("recompiles", "guards", "trace", "llvm"):
        assert f"[jitgrad.{topic}]" in err
    assert "optimized IR" in err and "assembly" in err
