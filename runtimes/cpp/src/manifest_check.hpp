// Reading manifest.json without trusting it, like seq2seq_export/manifest_check.py and
// runtimes/js/manifest_check.mjs: a size cap, strict JSON, the JSON Schema (seq2seq_export/
// manifest.schema.json, embedded at build time), then the rules that relate fields to each other.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace s2s {

// Which graph input or output plays each part (the manifest's "roles"; format 1: the fixed names).
struct Roles {
    std::string src_tokens = "src_tokens", src_lengths = "src_lengths", prev_tokens = "prev_tokens";
    std::string logits = "logits", next_tokens = "next_tokens";
};

// manifest.json parsed: refused above MAX_MANIFEST_BYTES before it is read, nested deeper than any
// manifest, not JSON, not an object, or of an unsupported format_version. Throws BundleError.
nlohmann::json read_manifest(const std::filesystem::path& mpath);

// The schema, then ids inside their vocabularies, distinct tokens, decoding ids equal to the target's
// <sos>/<eos>, vocabulary sizes equal to model_config's, roles naming graph IO. `where` ("DIR/manifest.json: ")
// starts every message. Returns the roles. Throws BundleError.
Roles check_manifest(const nlohmann::json& m, const std::string& where);

}  // namespace s2s
