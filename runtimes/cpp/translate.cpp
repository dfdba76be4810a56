// translate --bundle DIR [--max-len N] [--batch-size N] [--threads N] [--device D]
//
// One input per stdin line, one output line per input, exactly like `s2s-translate`.
// Exit codes as the Python CLI: 0 success, 2 unusable input (one line on stderr).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "seq2seq_driver.hpp"

namespace {

constexpr size_t kChunk = 512;  // stdin lines per round, as s2s-translate's TRANSLATE_CHUNK

constexpr const char* kUsage =
    "Usage: translate --bundle DIR [--max-len N] [--batch-size N] [--threads N] [--device D]\n"
    "\n"
    "  Translate stdin lines with a seq2seq-export bundle's TorchScript graphs (greedy decoding);\n"
    "  one output line per input line, like `s2s-translate`.\n"
    "\n"
    "  --bundle DIR      bundle directory written by s2s-export (manifest.json, encoder.pt, decoder_step.pt)\n"
    "  --max-len N       decoding steps per input [default: the manifest's decoding.max_len]\n"
    "  --batch-size N    inputs decoded together [default: 32]\n"
    "  --threads N       intra-op CPU threads [default: 1]\n"
    "  --device D        auto, cpu, cuda or cuda:N [default: auto]\n";

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

}  // namespace

int main(int argc, char** argv) {
    std::string bundle;
    s2s::Options options;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string flag = argv[i];
            if (flag == "-h" || flag == "--help") {
                std::cout << kUsage;
                return 0;
            }
            if (i + 1 >= argc) throw UsageError{"option " + flag + " needs a value (or is unknown)"};
            const std::string value = argv[++i];
            if (flag == "--bundle") bundle = value;
            else if (flag == "--max-len") options.max_len = parse_int(flag, value);
            else if (flag == "--batch-size") options.batch_size = parse_int(flag, value);
            else if (flag == "--threads") options.threads = parse_int(flag, value);
            else if (flag == "--device") options.device = value;
            else throw UsageError{"no such option: " + flag};
        }
        if (bundle.empty()) throw UsageError{"missing option --bundle DIR"};
    } catch (const UsageError& e) {
        std::cerr << "Error: " << e.message << " (try --help)\n";
        return 2;
    }
    try {
        std::ios::sync_with_stdio(false);
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
                for (const auto& text : translator.translate(lines, first_line)) (out += text) += '\n';
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
