// Vocabularies and tokenizers, mirroring seq2seq_export/vocab.py rule for rule (no torch here).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace s2s {

// Python's list(text): one token per code point. Both splitters throw VocabError on invalid UTF-8.
std::vector<std::string> split_chars(std::string_view text);
// UTF-8 -> one wchar_t per code point (for std::wregex); throws VocabError on invalid UTF-8.
std::wstring to_wide(std::string_view text);
// Python's text.split(): words between runs of any Unicode whitespace (str.isspace() characters).
std::vector<std::string> split_space(std::string_view text);

// Source normalization (seq2seq_export/vocab.py normalize_text): each step in order, applied once:
// "nfc" = Unicode NFC (ICU), "lower" = ASCII A-Z -> a-z only. Throws VocabError on an unknown step
// or invalid UTF-8.
std::string normalize_text(std::string_view text, const std::vector<std::string>& steps);

struct Vocab {
    std::vector<std::string> tokens;
    std::string tokenizer;  // "char" or "space"
    std::optional<int64_t> pad_id, unk_id, sos_id, eos_id;
    std::unordered_map<std::string, int64_t> index;

    // VOCAB = {tokenizer, tokens, specials: {pad, unk, sos, eos: id|null}}; throws VocabError.
    static Vocab from_json(const nlohmann::json& j);

    // Text -> ids; unknown tokens -> <unk> (VocabError without one); <eos> appended if add_eos.
    std::vector<int64_t> encode(std::string_view text, bool add_eos) const;
    // Ids -> text: stop at <eos>, drop <pad> and <sos>, join by "" (char) or " " (space).
    std::string decode(const std::vector<int64_t>& ids) const;
};

struct TextPipeline {
    Vocab src, tgt;
    bool src_append_eos = false;
    std::vector<std::string> normalize;  // source normalization steps; empty = none

    // The manifest's "text" object: {source: VOCAB, target: VOCAB, src_append_eos, normalize?: [step]}.
    static TextPipeline from_json(const nlohmann::json& j);
    // Source text -> ids, normalized first.
    std::vector<int64_t> encode_source(std::string_view text) const {
        return src.encode(normalize.empty() ? std::string(text) : normalize_text(text, normalize), src_append_eos);
    }
};

}  // namespace s2s
