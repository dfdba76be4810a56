// Beam search, mirroring seq2seq_export/runtime/beam.py: see beam.hpp and docs/decoding.md.
//
// Every live hypothesis of every source of a batch is one row of a single step call, rows grouped by
// source in batch order. Of a source's candidates (its rows x the vocabulary, ranked by log-prob
// sum) the beam_size best survive, equal sums to the lower (row, token), -infinity never: those
// ending in <eos> (or any at max_len) are finished and leave the batch, the others are the next
// step's rows. A source stops when its beam is empty, at max_len, or when it holds beam_size
// finished hypotheses and no live one can beat the worst of them: a live sum s (<= 0) can score at
// most s / max_len ** length_penalty.
#include "beam.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <string>

namespace s2s {
namespace {

constexpr int64_t kMaxBeamSize = 4096;      // seq2seq_export.constants.MAX_BEAM_SIZE
constexpr double kMaxLengthPenalty = 10.0;  // seq2seq_export.constants.MAX_LENGTH_PENALTY
constexpr size_t kPairwiseBlock = 128;      // numpy's PW_BLOCKSIZE (numpy/_core/src/umath/loops_utils.h.src)
constexpr double kInf = std::numeric_limits<double>::infinity();

// A double as Python's repr writes it (shortest round trip, "1.0" not "1"), for messages.
std::string repr(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[32];
    std::string s(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
    return s.find_first_of(".e") == std::string::npos ? s + ".0" : s;
}

// Sum of a[0, n) in numpy's pairwise order (pairwise_sum_DOUBLE), so that sums match bit for bit.
double pairwise_sum(const double* a, size_t n) {
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= kPairwiseBlock) {
        double r[8];
        std::copy(a, a + 8, r);
        size_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (size_t j = 0; j < 8; ++j) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

struct Row {  // one live hypothesis
    size_t seq;                  // its source's index in the batch
    std::vector<int64_t> ids;    // the tokens emitted so far
    std::vector<double> logps;   // their log-probs
    double total = 0;            // the log-probs summed left to right
};

struct Candidate {  // a row extended by one token
    size_t parent;
    int64_t token;
    double value;  // the extension's log-prob sum
};

// A row's k best tokens by sum, best first, equal sums to the lower token; no -infinity.
void row_best(const double* logp, size_t vocab, double total, size_t parent, size_t k, std::vector<Candidate>& out) {
    std::vector<Candidate> best;
    for (size_t token = 0; token < vocab; ++token) {
        const double value = total + logp[token];
        if (value == -kInf || (best.size() == k && value <= best.back().value)) continue;
        auto at = best.end();
        while (at != best.begin() && (at - 1)->value < value) --at;  // after every equal value
        best.insert(at, Candidate{parent, static_cast<int64_t>(token), value});
        if (best.size() > k) best.pop_back();
    }
    out.insert(out.end(), best.begin(), best.end());
}

// Each source's k best one-token extensions of its rows, grouped like the rows, best first within a
// source, equal sums to the lower (row, token) (beam.py best_candidates).
std::vector<Candidate> best_candidates(const std::vector<Row>& rows, const std::vector<double>& logp, size_t vocab, size_t k) {
    std::vector<Candidate> cands;
    for (size_t start = 0, end = 0; start < rows.size(); start = end) {
        std::vector<Candidate> group;
        for (end = start; end < rows.size() && rows[end].seq == rows[start].seq; ++end)
            row_best(&logp[end * vocab], vocab, rows[end].total, end, k, group);
        std::stable_sort(group.begin(), group.end(), [](const Candidate& a, const Candidate& b) { return a.value > b.value; });
        cands.insert(cands.end(), group.begin(), group.begin() + static_cast<std::ptrdiff_t>(std::min(k, group.size())));
    }
    return cands;
}

struct Grown {  // a candidate made a row: its parent row, whether it ended (<eos>, or max_len)
    Row row;
    size_t parent;
    bool eos, ended;
};

// The step's candidates (best_candidates) grown into rows.
std::vector<Grown> grow(const std::vector<Row>& rows, const std::vector<double>& logp, size_t vocab, size_t k, int64_t end_id, bool last) {
    std::vector<Grown> out;
    for (const Candidate& c : best_candidates(rows, logp, vocab, k)) {
        const Row& row = rows[c.parent];
        const double lp = logp[c.parent * vocab + static_cast<size_t>(c.token)];
        Grown g{Row{row.seq, row.ids, row.logps, row.total + lp}, c.parent, c.token == end_id, c.token == end_id || last};
        g.row.ids.push_back(c.token);
        g.row.logps.push_back(lp);
        out.push_back(std::move(g));
    }
    return out;
}

// Score the candidates that ended at step t into their sources' kept lists (beam.py _finish).
void finish(std::vector<std::vector<Scored>>& kept, std::vector<double>& worst, const std::vector<Grown>& cands, int64_t t, size_t k, double a) {
    std::set<size_t> touched;
    for (const Grown& g : cands) {
        if (!g.ended) continue;
        const auto& ids = g.row.ids;
        kept[g.row.seq].push_back(Scored{std::vector<int64_t>(ids.begin(), ids.end() - (g.eos ? 1 : 0)),
                                         g.row.total / std::pow(static_cast<double>(t), a), g.row.logps});
        touched.insert(g.row.seq);
    }
    for (size_t s : touched) {  // stable: earlier finished first on ties
        std::stable_sort(kept[s].begin(), kept[s].end(), [](const Scored& x, const Scored& y) { return x.score > y.score; });
        if (kept[s].size() > k) kept[s].resize(k);
        worst[s] = kept[s].size() == k ? kept[s].back().score : -kInf;
    }
}

// The live candidates of the sources that go on: a source stops when its best live sum divided by
// `longest` (max_len ** length_penalty) cannot beat its worst kept score.
std::vector<Grown> survivors(std::vector<Grown>&& cands, const std::vector<double>& worst, size_t n, double longest) {
    std::vector<double> best_live(n, -kInf);
    for (const Grown& g : cands)
        if (!g.ended) best_live[g.row.seq] = std::max(best_live[g.row.seq], g.row.total);
    std::vector<Grown> live;
    for (Grown& g : cands) {
        const size_t s = g.row.seq;
        if (!g.ended && !(std::isfinite(worst[s]) && best_live[s] / longest <= worst[s])) live.push_back(std::move(g));
    }
    return live;
}

}  // namespace

void check_search(const SearchOptions& s) {
    if (s.beam_size < 1 || s.beam_size > kMaxBeamSize)
        throw Error("beam_size must lie in [1, " + std::to_string(kMaxBeamSize) + "], got " + std::to_string(s.beam_size));
    if (s.num_hypotheses < 1 || s.num_hypotheses > s.beam_size)
        throw Error("num_hypotheses must lie in [1, beam_size " + std::to_string(s.beam_size) + "], got " +
                    std::to_string(s.num_hypotheses) + ": raise the beam size or ask for fewer hypotheses");
    if (!std::isfinite(s.length_penalty) || s.length_penalty < 0 || s.length_penalty > kMaxLengthPenalty)
        throw Error("length_penalty must be a finite number in [0, 10], got " + repr(s.length_penalty));
}

std::vector<double> log_softmax(const std::vector<float>& logits, size_t rows, size_t vocab) {
    std::vector<double> out(logits.begin(), logits.end()), exps(vocab);
    for (size_t r = 0; r < rows; ++r) {
        double* x = &out[r * vocab];
        double max = -kInf;
        for (size_t j = 0; j < vocab; ++j) max = (std::isnan(x[j]) || std::isnan(max)) ? NAN : std::max(max, x[j]);  // NaN wins, as numpy's max
        for (size_t j = 0; j < vocab; ++j) exps[j] = std::exp(x[j] -= max);
        const double log = std::log(pairwise_sum(exps.data(), vocab));
        for (size_t j = 0; j < vocab; ++j) x[j] = std::isnan(x[j] - log) ? -kInf : x[j] - log;
    }
    return out;
}

std::vector<std::vector<Scored>> beam_search(StepModel& model, size_t n, const SearchOptions& search, const SearchLimits& limits) {
    const auto k = static_cast<size_t>(search.beam_size);
    std::vector<std::vector<Scored>> kept(n);  // per source: its best (at most k) finished, best first
    std::vector<double> worst(n, -kInf);      // per source: the k-th best finished score (-inf while fewer)
    std::vector<Row> rows;
    for (size_t s = 0; s < n; ++s) rows.push_back(Row{s, {}, {}, 0});
    std::vector<int64_t> prev(n, limits.start_id);
    const double longest = std::pow(static_cast<double>(limits.max_len), search.length_penalty);
    for (int64_t t = 1; t <= limits.max_len; ++t) {
        size_t vocab = 0;
        const auto logits = model.step_logits(prev, vocab);
        auto cands = grow(rows, log_softmax(logits, rows.size(), vocab), vocab, k, limits.end_id, t == limits.max_len);
        finish(kept, worst, cands, t, k, search.length_penalty);
        const auto live = survivors(std::move(cands), worst, n, longest);
        if (live.empty()) break;
        std::vector<int64_t> heirs;
        bool same = live.size() == rows.size();
        for (size_t i = 0; i < live.size(); ++i) {
            heirs.push_back(static_cast<int64_t>(live[i].parent));
            same = same && live[i].parent == i;
        }
        if (!same) model.select(heirs);  // rows repeat where a hypothesis has several heirs
        rows.clear();
        prev.clear();
        for (const Grown& g : live) {
            rows.push_back(g.row);
            prev.push_back(g.row.ids.back());
        }
    }
    for (auto& found : kept)
        if (found.size() > static_cast<size_t>(search.num_hypotheses)) found.resize(static_cast<size_t>(search.num_hypotheses));
    return kept;
}

}  // namespace s2s
