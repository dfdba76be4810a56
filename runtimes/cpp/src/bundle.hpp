// Loading a bundle without trusting it, mirroring seq2seq_export/manifest.py load_bundle (no torch here).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "manifest_check.hpp"
#include "text.hpp"

namespace s2s {

constexpr int64_t kDefaultMaxSrcTokens = 1024;  // seq2seq_export.constants.DEFAULT_MAX_SRC_TOKENS (format 1)
constexpr const char* kBatch = "batch";  // the symbolic batch dim in the manifest's IO shapes

struct TensorSpec {
    std::string name;
    std::vector<std::string> shape;  // a dim name ("batch", "src_len") or a fixed size as text
};

struct GraphSpec {
    std::vector<TensorSpec> inputs, outputs;

    size_t output_index(const std::string& name) const;  // throws BundleError if absent
};

// One tensor carried between decoder steps (a manifest "state" or "memory" entry): the encoder's
// output `encoder_output` is fed to each step as `decoder_input`; a state tensor is then replaced by
// the step's `decoder_output`, a memory tensor (decoder_output empty) is fed unchanged every step.
struct CarriedLink {
    std::string encoder_output, decoder_input, decoder_output;
    size_t batch_axis = 0;  // position of "batch" in the decoder input's shape, e.g. 1 for (L, B, H)

    bool is_state() const { return !decoder_output.empty(); }
};

// A graph file whose size and sha256 matched the manifest, with the bytes that were checked.
struct CheckedFile {
    std::filesystem::path path;
    std::string bytes;
};

struct Bundle {
    std::filesystem::path root;
    TextPipeline text;
    GraphSpec encoder, decoder_step;
    std::vector<CarriedLink> carried;  // the manifest's state entries, then its memory entries
    Roles roles;                       // the graph IO names the loop feeds and reads
    int64_t max_len = 0, start_id = 0, end_id = 0;
    int64_t max_src_tokens = kDefaultMaxSrcTokens;  // tokens per input, <eos> included
    CheckedFile encoder_pt, decoder_step_pt;  // the TorchScript graphs
};

// Checks the manifest (size, schema, rules between fields), then the location, size and sha256 of each
// file it reads (the two TorchScript graphs), then the state and memory entries against the graphs' IO.
// Throws BundleError with a one-line message.
Bundle load_bundle(const std::filesystem::path& root);

}  // namespace s2s
