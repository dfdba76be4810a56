// seq2seq_driver: run a seq2seq-export bundle (manifest.json + encoder.pt + decoder_step.pt) from C++.
//
// The public API needs no torch headers: include this file, link the `seq2seq_driver` CMake target.
//
//   s2s::Translator t = s2s::Translator::open("artifacts/bundle");
//   std::vector<std::string> out = t.translate({"hello", "world"});
//   auto records = t.translations({"hello"}, {/*beam_size=*/5, /*num_hypotheses=*/3, /*length_penalty=*/1.0});
//
// Every failure the caller can fix (missing or changed bundle file, unsupported manifest, unknown
// token without <unk>) is an s2s::Error whose what() is one line saying what, where and what to do.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace s2s {

// Base class of every error this library throws on purpose.
class Error : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

// A bundle that cannot be trusted: missing file, bad checksum, path escaping, bad manifest.
class BundleError : public Error {
   public:
    using Error::Error;
};

// Input text the vocabulary cannot encode, or a vocabulary that is inconsistent.
class VocabError : public Error {
   public:
    using Error::Error;
};

// An input with more tokens (as the model sees it, <eos> included) than the bundle's decoding.max_src_tokens.
class InputTooLong : public Error {
   public:
    using Error::Error;
};

// Strict UTF-8 as Python decodes it (no overlongs, no surrogates, nothing above U+10FFFF).
// Translator::translate throws VocabError on text that is not.
bool is_valid_utf8(std::string_view text);

struct Options {
    std::optional<int64_t> max_len;  // decoding steps per input; unset: the manifest's decoding.max_len
    int64_t batch_size = 32;         // inputs decoded together (sorted by length first); results never depend on it
    int64_t threads = 1;             // intra-op CPU threads; 1 is deterministic and fastest for small models
    std::string device = "auto";     // "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N"
};

// How to search (seq2seq_export.runtime.core.DecodeOptions): beam_size 1 is greedy.
struct SearchOptions {
    int64_t beam_size = 1;        // hypotheses kept per input while searching, in [1, 4096]
    int64_t num_hypotheses = 1;   // hypotheses returned per input, best first, in [1, beam_size]
    double length_penalty = 1.0;  // exponent a of the length in the score below, in [0, 10] (0: the plain sum)
};

// One entry of an n-best list. score = (sum of the natural-log probabilities of the tokens, <eos>
// included) / length ** length_penalty, length counting <eos>; a hypothesis cut at max_len has
// length max_len and no <eos>. Log-probs are the log-softmax of the step logits in double.
struct Hypothesis {
    std::string output;            // detokenized target text
    std::vector<int64_t> ids;      // target ids without <sos>/<eos>
    std::optional<double> score;   // unset for a greedy decode without scores, and for an input with no tokens
};

// One input's result, like seq2seq_export.runtime.translator.Translation: hypotheses best first.
struct Translation {
    std::string input;
    std::vector<Hypothesis> hypotheses;  // never empty; hypotheses[0] is the best (an empty input: "", no score)
};

// Throws Error for a bad value, with the Python runtime's message (e.g. "beam_size must lie in [1, 4096], got 0").
void check_search(const SearchOptions& search);

// A loaded, checked bundle ready to translate. Movable, not copyable.
class Translator {
   public:
    // Reads DIR/manifest.json, checks it (size, schema, rules between fields) and the size and sha256
    // of every file it reads, then loads the TorchScript graphs. Throws BundleError.
    static Translator open(const std::string& bundle_dir, const Options& options = {});

    // One output line per input line, in input order (greedy decoding, like `s2s-translate`). An input
    // with more tokens than the bundle's decoding.max_src_tokens throws InputTooLong naming its line
    // (inputs[0] being line first_line).
    std::vector<std::string> translate(const std::vector<std::string>& inputs, int64_t first_line = 1) const;
    // n-best lists with scores, like the Python runtime's Translator.translations: beam search
    // (search.beam_size > 1, or scores: beam_size 1 then gives greedy's tokens, scored) or greedy.
    // A bad search option throws Error with the Python runtime's message; InputTooLong as translate().
    std::vector<Translation> translations(const std::vector<std::string>& inputs, const SearchOptions& search = {},
                                          bool scores = false, int64_t first_line = 1) const;
    // The target ids behind translate(), without <sos>/<eos>.
    std::vector<std::vector<int64_t>> translate_ids(const std::vector<std::string>& inputs, int64_t first_line = 1) const;

    Translator(Translator&&) noexcept;
    Translator& operator=(Translator&&) noexcept;
    ~Translator();

   private:
    struct Impl;
    explicit Translator(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace s2s
