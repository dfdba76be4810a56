#include "text.hpp"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "../seq2seq_driver.hpp"

namespace s2s {
namespace {

// Length of the valid UTF-8 sequence starting at text[i] (Python's strict decoder: no overlongs,
// no surrogates, nothing above U+10FFFF), or 0 if none starts there. Sets *cp to its code point.
size_t utf8_sequence(std::string_view text, size_t i, char32_t* cp) {
    auto byte = [&](size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u; };
    auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) { return byte(k) >= lo && byte(k) <= hi; };
    const unsigned b0 = byte(0);
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t n = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = cont(1) ? 2 : 0;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
        n = cont(1, lo, hi) && cont(2) ? 3 : 0;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
        n = cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
    }
    if (n == 0) return 0;
    char32_t c = b0 & (0xFF >> (n + 1));
    for (size_t k = 1; k < n; ++k) c = (c << 6) | (byte(k) & 0x3F);
    *cp = c;
    return n;
}

// The code points for which Python's str.isspace() is true (what str.split() splits on).
bool is_python_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

// Calls f(start, length, code point) for each character; throws VocabError at invalid UTF-8.
template <class F>
void for_each_char(std::string_view text, F f) {
    for (size_t i = 0; i < text.size();) {
        char32_t cp = 0;
        const size_t n = utf8_sequence(text, i, &cp);
        if (n == 0) {
            char byte[8];
            std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(text[i]));
            throw VocabError(std::string("input text is not valid UTF-8 (byte ") + byte + " at offset " +
                             std::to_string(i) + ")");
        }
        f(i, n, cp);
        i += n;
    }
}

std::optional<int64_t> special_id(const nlohmann::json& specials, const char* name) {
    if (!specials.contains(name) || specials.at(name).is_null()) return std::nullopt;
    return specials.at(name).get<int64_t>();
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
    char32_t cp = 0;
    for (size_t i = 0, n = 0; i < text.size(); i += n)
        if ((n = utf8_sequence(text, i, &cp)) == 0) return false;
    return true;
}

std::wstring to_wide(std::string_view text) {
    static_assert(sizeof(wchar_t) == 4, "a wchar_t must hold any code point");
    std::wstring out;
    for_each_char(text, [&](size_t, size_t, char32_t cp) { out += static_cast<wchar_t>(cp); });
    return out;
}

std::vector<std::string> split_chars(std::string_view text) {
    std::vector<std::string> out;
    for_each_char(text, [&](size_t start, size_t len, char32_t) { out.emplace_back(text.substr(start, len)); });
    return out;
}

std::string normalize_text(std::string_view text, const std::vector<std::string>& steps) {
    for_each_char(text, [](size_t, size_t, char32_t) {});  // invalid UTF-8: the tokenizers' error, not ICU's U+FFFD
    std::string out(text);
    for (const auto& step : steps) {
        if (step == "lower") {
            for (char& c : out)
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        } else if (step == "nfc") {
            UErrorCode status = U_ZERO_ERROR;
            const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
            icu::UnicodeString normalized;
            if (U_SUCCESS(status)) normalized = nfc->normalize(icu::UnicodeString::fromUTF8(out), status);
            if (U_FAILURE(status)) throw VocabError(std::string("ICU could not normalize to NFC: ") + u_errorName(status));
            out.clear();
            normalized.toUTF8String(out);
        } else {
            throw VocabError("unknown normalize step '" + step + "': use nfc, lower");
        }
    }
    return out;
}

std::vector<std::string> split_space(std::string_view text) {
    std::vector<std::string> out;
    std::string word;
    bool in_word = false;
    for_each_char(text, [&](size_t start, size_t len, char32_t cp) {
        if (is_python_space(cp)) {
            if (in_word) out.push_back(word);
            word.clear();
            in_word = false;
        } else {
            word.append(text.substr(start, len));
            in_word = true;
        }
    });
    if (in_word) out.push_back(word);
    return out;
}

Vocab Vocab::from_json(const nlohmann::json& j) {
    Vocab v;
    try {
        v.tokenizer = j.at("tokenizer").get<std::string>();
        v.tokens = j.at("tokens").get<std::vector<std::string>>();
        const auto& sp = j.at("specials");
        v.pad_id = special_id(sp, "pad");
        v.unk_id = special_id(sp, "unk");
        v.sos_id = special_id(sp, "sos");
        v.eos_id = special_id(sp, "eos");
    } catch (const nlohmann::json::exception& e) {
        throw VocabError(std::string("malformed vocabulary: missing or bad field (") + e.what() + ")");
    }
    if (v.tokenizer != "char" && v.tokenizer != "space")
        throw VocabError("unknown tokenizer '" + v.tokenizer + "': use one of char, space");
    const int64_t size = static_cast<int64_t>(v.tokens.size());
    for (int64_t i = 0; i < size; ++i) {
        auto [it, added] = v.index.emplace(v.tokens[i], i);
        if (!added)
            throw VocabError("token '" + v.tokens[i] + "' appears twice in the vocabulary (ids " +
                             std::to_string(it->second) + " and " + std::to_string(i) + ")");
    }
    for (auto id : {v.pad_id, v.unk_id, v.sos_id, v.eos_id})
        if (id && (*id < 0 || *id >= size))
            throw VocabError("special id " + std::to_string(*id) + " is outside the vocabulary (size " +
                             std::to_string(size) + ")");
    return v;
}

std::vector<int64_t> Vocab::encode(std::string_view text, bool add_eos) const {
    std::vector<int64_t> ids;
    for (const auto& tok : tokenizer == "char" ? split_chars(text) : split_space(text)) {
        auto it = index.find(tok);
        if (it != index.end()) {
            ids.push_back(it->second);
        } else if (unk_id) {
            ids.push_back(*unk_id);
        } else {
            throw VocabError("token '" + tok + "' is not in the vocabulary and it has no <unk> token");
        }
    }
    if (add_eos) {
        if (!eos_id) throw VocabError("cannot append <eos>: the vocabulary has no end token");
        ids.push_back(*eos_id);
    }
    return ids;
}

std::string Vocab::decode(const std::vector<int64_t>& ids) const {
    std::string out;
    bool first = true;
    for (int64_t id : ids) {
        if (id == eos_id) break;
        if (id == pad_id || id == sos_id) continue;
        if (id < 0 || id >= static_cast<int64_t>(tokens.size()))
            throw VocabError("id " + std::to_string(id) + " is outside the vocabulary (size " +
                             std::to_string(tokens.size()) + ")");
        if (!first && tokenizer == "space") out += ' ';
        out += tokens[id];
        first = false;
    }
    return out;
}

TextPipeline TextPipeline::from_json(const nlohmann::json& j) {
    TextPipeline t{Vocab::from_json(j.at("source")), Vocab::from_json(j.at("target")),
                   j.at("src_append_eos").get<bool>(),
                   j.value("normalize", std::vector<std::string>())};
    for (size_t i = 0; i < t.normalize.size(); ++i) {  // the schema's rule, kept by the one who applies it
        const auto& step = t.normalize[i];
        if ((step != "nfc" && step != "lower") ||
            std::find(t.normalize.begin(), t.normalize.begin() + i, step) != t.normalize.begin() + i)
            throw VocabError("text.normalize: '" + step + "' is not a distinct step of nfc, lower");
    }
    if (!t.tgt.sos_id || !t.tgt.eos_id)
        throw VocabError("the target vocabulary needs both a start (<sos>) and an end (<eos>) token");
    if (!t.src.pad_id || !t.tgt.pad_id) throw VocabError("both vocabularies need a padding token (<pad>)");
    if (t.src_append_eos && !t.src.eos_id)
        throw VocabError("src_append_eos is set but the source vocabulary has no <eos> token");
    return t;
}

}  // namespace s2s
