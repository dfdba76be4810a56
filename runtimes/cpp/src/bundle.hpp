// Loading a bundle without trusting it, mirroring seq2seq_export/manifest.py load_bundle (no torch here).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "text.hpp"

namespace s2s {

struct TensorSpec {
    std::string name;
    std::vector<std::string> shape;  // a dim name ("batch", "src_len") or a fixed size as text
};

struct GraphSpec {
    std::vector<TensorSpec> inputs, outputs;

    size_t output_index(const std::string& name) const;  // throws BundleError if absent
    size_t batch_axis(const std::string& output) const;  // axis named "batch" of that output
};

// How one recurrent state tensor flows: encoder output -> decoder input -> decoder output.
struct StateLink {
    std::string encoder_output, decoder_input, decoder_output;
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
    std::vector<StateLink> state;
    int64_t max_len = 0, start_id = 0, end_id = 0;
    CheckedFile encoder_pt, decoder_step_pt;  // the TorchScript graphs
};

// Checks the manifest version, then the location, size and sha256 of each file it reads (the two
// TorchScript graphs), then the rest of the manifest. Throws BundleError with a one-line message.
Bundle load_bundle(const std::filesystem::path& root);

}  // namespace s2s
