// translate --bundle DIR [--max-len N] [--batch-size N] [--threads N] [--device D]
//           [--beam-size K] [--n-best N] [--length-penalty A] [--json]
//
// One input per stdin line, one output line per input, exactly like `s2s-translate`: the best
// hypothesis, or with --json one JSON object {input, output, ids, score, hypotheses} (n-best, scored).
// Exit codes as the Python CLI: 0 success, 2 unusable input (one line on stderr).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "seq2seq_driver.hpp"

namespace {

constexpr size_t kChunk = 512;  // stdin lines per round, as s2s-translate's TRANSLATE_CHUNK

constexpr const char* kUsage =
    "Usage: translate --bundle DIR [--max-len N] [--batch-size N] [--threads N] [--device D]\n"
    "                 [--beam-size K] [--n-best N] [--length-penalty A] [--json]\n"
    "\n"
    "  Translate stdin lines with a seq2seq-export bundle's TorchScript graphs (greedy or beam search);\n"
    "  one output line per input line, like `s2s-translate`.\n"
    "\n"
    "  --bundle DIR      bundle directory written by s2s-export (manifest.json, encoder.pt, decoder_step.pt)\n"
    "  --max-len N       decoding steps per input [default: the manifest's decoding.max_len]\n"
    "  --batch-size N    inputs decoded together [default: 32]\n"
    "  --threads N       intra-op CPU threads [default: 1]\n"
    "  --device D        auto, cpu, cuda or cuda:N [default: auto]\n"
    "  --beam-size K     hypotheses kept per input while searching; 1 is greedy [default: 1]\n"
    "  --n-best N        hypotheses returned per input (with --json), at most K [default: 1]\n"
    "  --length-penalty A  score = sum of log-probs / length ** A (0: the plain sum) [default: 1.0]\n"
    "  --json            one JSON object per line: {input, output, ids, score, hypotheses: [{output, ids, score}]}\n";

struct UsageError {
    std::string message;
};

// One line of input as s2s-translate reads it (seq2seq_export/lines.py): only "\n" ends a line,
// "\r\n" is one line end and a lone "\r" is a character; a last line without an ending still counts.
bool read_line(std::streambuf* in, std::string& line) {
    line.clear();
    for (int c = in->sbumpc(); c != std::char_traits<char>::eof(); c = in->sbumpc()) {
        if (c == '\n') {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return true;
        }
        line += static_cast<char>(c);
    }
    return !line.empty();
}

int64_t parse_int(const std::string& flag, const std::string& value) {
    size_t used = 0;
    int64_t n = 0;
    try {
        n = std::stoll(value, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != value.size())
        throw UsageError{"invalid value for " + flag + ": '" + value + "' is not a valid integer"};
    return n;
}

double parse_double(const std::string& flag, const std::string& value) {
    size_t used = 0;
    double x = 0;
    try {
        x = std::stod(value, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != value.size()) throw UsageError{"invalid value for " + flag + ": '" + value + "' is not a valid number"};
    return x;
}

// One input's record as `s2s-translate --json` writes it; score null when not scored.
std::string json_line(const s2s::Translation& t) {
    using Json = nlohmann::ordered_json;  // keys in s2s-translate's order
    auto hypothesis = [](Json record, const s2s::Hypothesis& h) {
        record["output"] = h.output;
        record["ids"] = h.ids;
        record["score"] = h.score ? Json(*h.score) : Json();
        return record;
    };
    Json record = hypothesis(Json{{"input", t.input}}, t.hypotheses.at(0));
    record["hypotheses"] = Json::array();
    for (const auto& h : t.hypotheses) record["hypotheses"].push_back(hypothesis(Json::object(), h));
    return record.dump() + "\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::string bundle;
    s2s::Options options;
    s2s::SearchOptions search;
    bool json = false;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string flag = argv[i];
            if (flag == "-h" || flag == "--help") {
                std::cout << kUsage;
                return 0;
            }
            if (flag == "--json") {
                json = true;
                continue;
            }
            if (i + 1 >= argc) throw UsageError{"option " + flag + " needs a value (or is unknown)"};
            const std::string value = argv[++i];
            if (flag == "--bundle") bundle = value;
            else if (flag == "--max-len") options.max_len = parse_int(flag, value);
            else if (flag == "--batch-size") options.batch_size = parse_int(flag, value);
            else if (flag == "--threads") options.threads = parse_int(flag, value);
            else if (flag == "--device") options.device = value;
            else if (flag == "--beam-size") search.beam_size = parse_int(flag, value);
            else if (flag == "--n-best") search.num_hypotheses = parse_int(flag, value);
            else if (flag == "--length-penalty") search.length_penalty = parse_double(flag, value);
            else throw UsageError{"no such option: " + flag};
        }
        if (bundle.empty()) throw UsageError{"missing option --bundle DIR"};
    } catch (const UsageError& e) {
        std::cerr << "Error: " << e.message << " (try --help)\n";
        return 2;
    }
    try {
        std::ios::sync_with_stdio(false);
        s2s::check_search(search);  // before the bundle loads
        const s2s::Translator translator = s2s::Translator::open(bundle, options);
        // Stream stdin in chunks like s2s-translate: bounded memory, batches stay full, and a
        // terminal gets each answer at once.
        const size_t chunk = isatty(STDIN_FILENO) ? 1 : kChunk;
        std::vector<std::string> lines;
        int64_t first_line = 1;  // the line number of lines[0], for errors
        bool more = true;
        while (more) {
            std::string line;
            more = read_line(std::cin.rdbuf(), line);
            if (more && first_line == 1 && lines.empty() && line.rfind("\xEF\xBB\xBF", 0) == 0)
                line.erase(0, 3);  // a leading byte-order mark is dropped, as s2s-translate does
            if (more && !s2s::is_valid_utf8(line)) throw s2s::Error("standard input is not valid UTF-8");
            if (more) lines.push_back(std::move(line));
            if (lines.size() == chunk || (!more && !lines.empty())) {
                std::string out;
                for (const auto& t : translator.translations(lines, search, json, first_line))  // --json: always scored
                    out += json ? json_line(t) : t.hypotheses[0].output + '\n';
                std::fwrite(out.data(), 1, out.size(), stdout);
                if (std::fflush(stdout) != 0) throw s2s::Error("cannot write to standard output");
                first_line += static_cast<int64_t>(lines.size());
                lines.clear();
            }
        }
        return 0;
    } catch (const s2s::Error& e) {
        std::cerr << "Error: " << e.what() << "\n";
        return 2;
    }
}
