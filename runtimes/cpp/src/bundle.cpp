#include "bundle.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "../seq2seq_driver.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace s2s {
namespace {

constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kFormat = "torchscript";  // the only graph format this driver reads

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw BundleError(path.string() + ": cannot be read");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool inside(const fs::path& dir, const fs::path& file) {
    auto d = dir.begin(), f = file.begin();
    for (; d != dir.end() && !d->empty(); ++d, ++f)
        if (f == file.end() || *d != *f) return false;
    return f != file.end();
}

std::string sha256_hex(const std::string& bytes) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int len = 0;
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), digest.data(), &len) != 1)
        throw Error("OpenSSL could not compute a sha256 digest");
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xF];
    }
    return out;
}

// A FILE record {path, sha256, size}: the path must stay inside the bundle, the bytes must match.
CheckedFile read_checked(const fs::path& root, const fs::path& mpath, const json& entry, const std::string& where) {
    if (!entry.is_object() || !entry.contains("path") || !entry.contains("sha256") || !entry.contains("size"))
        throw BundleError(mpath.string() + ": " + where + " is not a file record with path, sha256 and size");
    const json& rel = entry["path"];
    const std::string rel_s = rel.is_string() ? rel.get<std::string>() : rel.dump();
    bool ok = rel.is_string() && !rel_s.empty() && rel_s.find('\\') == std::string::npos &&
              !fs::path(rel_s).is_absolute();
    for (const auto& part : fs::path(rel_s)) ok = ok && part != "..";
    if (!ok)
        throw BundleError(mpath.string() + ": " + where + " path '" + rel_s +
                          "' must be a relative path inside the bundle");
    const fs::path full = root / rel_s;
    std::error_code ec;
    const fs::path resolved = fs::canonical(full, ec);
    if (ec) throw BundleError(full.string() + ": file listed in the manifest (" + where + ") is missing");
    if (!inside(fs::canonical(root), resolved))
        throw BundleError(full.string() + ": " + where + " resolves to " + resolved.string() +
                          ", outside the bundle directory");
    if (!fs::is_regular_file(resolved)) throw BundleError(full.string() + ": " + where + " is not a regular file");
    std::string bytes = read_file(resolved);
    const json& size = entry["size"];
    const json& sha = entry["sha256"];
    if (!size.is_number_integer() || size.get<int64_t>() != static_cast<int64_t>(bytes.size()) ||
        !sha.is_string() || sha.get<std::string>() != sha256_hex(bytes))
        throw BundleError(full.string() + ": checksum mismatch (" + where +
                          "): the file was changed or corrupted after export");
    return {full, std::move(bytes)};
}

GraphSpec graph_spec(const json& g) {
    auto tensors = [](const json& list) {
        std::vector<TensorSpec> out;
        for (const json& t : list) {
            TensorSpec spec{t.at("name").get<std::string>(), {}};
            for (const json& d : t.at("shape")) spec.shape.push_back(d.is_string() ? d.get<std::string>() : d.dump());
            out.push_back(std::move(spec));
        }
        return out;
    };
    return {tensors(g.at("inputs")), tensors(g.at("outputs"))};
}

const json& torchscript_record(const fs::path& root, const json& manifest, const std::string& graph) {
    const json& files = manifest.at("graphs").at(graph).at("files");
    if (!files.contains(kFormat)) {
        std::string formats;
        for (const auto& [fmt, _] : files.items()) formats += (formats.empty() ? "" : ", ") + fmt;
        throw BundleError(root.string() + ": bundle has no " + kFormat + " file for the " + graph +
                          " graph (formats: " + (formats.empty() ? "none" : formats) + ")");
    }
    return files.at(kFormat);
}

const TensorSpec* find_tensor(const std::vector<TensorSpec>& list, const std::string& name) {
    for (const auto& t : list)
        if (t.name == name) return &t;
    return nullptr;  // absent
}

// A "state" or "memory" entry, checked against the graphs: its names must be graph IO and the
// decoder input must have a batch axis.
CarriedLink carried_link(const json& e, bool state, const GraphSpec& encoder, const GraphSpec& step,
                         const std::string& where) {
    auto name = [&](const char* key) {
        return e.is_object() && e.contains(key) && e[key].is_string() ? e[key].get<std::string>() : std::string();
    };
    CarriedLink link{name("encoder_output"), name("decoder_input"), state ? name("decoder_output") : "", 0};
    const TensorSpec* input = find_tensor(step.inputs, link.decoder_input);
    const std::vector<std::string> no_shape;
    const auto& shape = input ? input->shape : no_shape;
    link.batch_axis = static_cast<size_t>(std::find(shape.begin(), shape.end(), kBatch) - shape.begin());
    if (link.batch_axis == shape.size() || !find_tensor(encoder.outputs, link.encoder_output) ||
        (state && !find_tensor(step.outputs, link.decoder_output)))
        throw BundleError(where + (state ? "state" : "memory") + " entry " + e.dump() +
                          " does not match the encoder and decoder_step graphs' inputs and outputs");
    return link;
}

// The manifest's state entries (the schema makes it a non-empty list), then its memory entries (a list;
// format 1 bundles may lack it); every decoder_step input but prev_tokens must be fed by one of them.
std::vector<CarriedLink> carried_links(const json& m, const GraphSpec& encoder, const GraphSpec& step,
                                       const std::string& prev_tokens, const std::string& where) {
    std::vector<CarriedLink> links;
    for (const json& e : m["state"]) links.push_back(carried_link(e, true, encoder, step, where));
    for (const json& e : m.value("memory", json::array())) links.push_back(carried_link(e, false, encoder, step, where));
    for (const auto& in : step.inputs) {
        const bool fed = std::any_of(links.begin(), links.end(), [&](const CarriedLink& l) { return l.decoder_input == in.name; });
        if (!fed && in.name != prev_tokens)
            throw BundleError(where + "decoder_step input '" + in.name + "' is fed by no state or memory entry");
    }
    return links;
}

}  // namespace

size_t GraphSpec::output_index(const std::string& name) const {
    for (size_t i = 0; i < outputs.size(); ++i)
        if (outputs[i].name == name) return i;
    throw BundleError("manifest: graph has no output named '" + name + "'");
}


Bundle load_bundle(const fs::path& root) {
    const fs::path mpath = root / kManifestFile;
    const std::string where = mpath.string() + ": ";
    if (!fs::is_directory(root)) throw BundleError(root.string() + ": not a bundle directory");
    if (!fs::is_regular_file(mpath))
        throw BundleError(where + "missing; is " + root.string() + " a bundle written by s2s-export?");
    const json m = read_manifest(mpath);
    const Roles roles = check_manifest(m, where);
    try {
        Bundle b;
        b.root = root;
        b.roles = roles;
        b.encoder_pt = read_checked(root, mpath, torchscript_record(root, m, "encoder"), "graphs.encoder.files.torchscript");
        b.decoder_step_pt = read_checked(root, mpath, torchscript_record(root, m, "decoder_step"),
                                         "graphs.decoder_step.files.torchscript");
        b.text = TextPipeline::from_json(m.at("text"));
        b.encoder = graph_spec(m.at("graphs").at("encoder"));
        b.decoder_step = graph_spec(m.at("graphs").at("decoder_step"));
        b.carried = carried_links(m, b.encoder, b.decoder_step, roles.prev_tokens, where);
        const json& dec = m.at("decoding");
        b.max_len = dec.at("max_len").get<int64_t>();
        b.start_id = dec.at("start_id").get<int64_t>();
        b.end_id = dec.at("end_id").get<int64_t>();
        b.max_src_tokens = dec.value("max_src_tokens", kDefaultMaxSrcTokens);
        return b;
    } catch (const BundleError&) {
        throw;
    } catch (const VocabError& e) {
        throw BundleError(where + e.what());
    } catch (const json::exception& e) {
        throw BundleError(where + "malformed manifest: missing or bad field (" + e.what() + ")");
    }
}

}  // namespace s2s
