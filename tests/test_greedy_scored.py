"""greedy_scored (runtime/greedy.py) gives beam_search's beam-1 list to the last bit, on many small random models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_beam_rule import TinyRnnBackend, random_case

from seq2seq_export.runtime import beam_search
from seq2seq_export.runtime.greedy import greedy_scored


def one_best(case_seed: int, penalty: float, quantum: float):
    backend, opts, seqs = random_case(case_seed, penalty, quantum)
    return backend, dataclasses.replace(opts, beam_size=1, num_hypotheses=1), seqs


@pytest.mark.parametrize("quantum", [0.0, 0.5])  # 0.5: logits on a coarse grid, so argmax ties are common
@pytest.mark.parametrize("penalty", [0.0, 0.6, 1.0, 2.0])
def test_equals_the_beam_of_one_bit_for_bit(penalty, quantum):
    cut = 0
    for seed in range(60):
        backend, opts, seqs = one_best(seed, penalty, quantum)
        got = greedy_scored(backend, seqs, opts)
        assert got == beam_search(backend, seqs, opts, stop_early=False), seed  # Scored: exact floats
        assert got == beam_search(backend, seqs, opts)
        cut += sum(len(h[0].ids) == opts.max_len for h in got)
    assert cut, "no hypothesis was cut at max_len: that path went untested"


class BrokenRow(TinyRnnBackend):
    """The first row's logits turn NaN at the second step (a broken model)."""

    def step_logits(self, prev, h):
        logits, h = super().step_logits(prev, h)
        if len(self.rows) == 2:
            logits[0] = np.nan
        return logits, h


@pytest.mark.parametrize("max_len", [2, 8])  # 2: the broken step is the last one, where every row finishes
def test_a_row_with_no_finite_log_prob_leaves_with_an_empty_list_as_in_the_beam(max_len):
    _, opts, _ = one_best(3, 1.0, 0.0)
    opts = dataclasses.replace(opts, max_len=max_len)
    seqs = [[3, 4], [5], [4, 4, 3]]
    got = greedy_scored(BrokenRow(3, 9), seqs, opts)
    assert got == beam_search(BrokenRow(3, 9), seqs, opts, stop_early=False)
    assert got[0] == [] and all(got[1:])
