// Beam search over a decoder-step interface, step for step as seq2seq_export/runtime/beam.py (and
// runtimes/js/beam.mjs), so that the n-best token sequences are the same and the scores agree to
// float rounding. No torch here: the caller runs the graphs (seq2seq_driver.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "../seq2seq_driver.hpp"

namespace s2s {

// One hypothesis of a search, scored (runtime.core.Scored): score = sum(token_scores) /
// token_scores.size() ** length_penalty, the token_scores being the natural-log probabilities of
// every emitted token, <eos> included; a hypothesis cut at max_len has max_len tokens and no <eos>.
struct Scored {
    std::vector<int64_t> ids;  // target ids without <sos>/<eos>
    double score = 0;
    std::vector<double> token_scores;
};

// One batch's decoder, as beam_search drives it; its carried tensors live inside.
class StepModel {
   public:
    virtual ~StepModel() = default;
    // One decoder step for prev (R,): the logits (R x vocab, row-major float32), and the carried
    // tensors advance to the next step.
    virtual std::vector<float> step_logits(const std::vector<int64_t>& prev, size_t& vocab) = 0;
    // Keep the given rows (any order, may repeat) of every carried tensor.
    virtual void select(const std::vector<int64_t>& rows) = 0;
};

struct SearchLimits {
    int64_t start_id = 0, end_id = 0, max_len = 1;
};

// (rows, vocab) float32 logits -> float64 log-probs, max-shifted, the sum of exp taken in numpy's
// pairwise order (as runtime/core.py log_softmax); NaN becomes -infinity.
std::vector<double> log_softmax(const std::vector<float>& logits, size_t rows, size_t vocab);

// Decode `n` sources already encoded in `model`: per source its n-best list, at most
// num_hypotheses hypotheses, best score first (equal scores: the one finished first).
std::vector<std::vector<Scored>> beam_search(StepModel& model, size_t n, const SearchOptions& search, const SearchLimits& limits);

}  // namespace s2s
