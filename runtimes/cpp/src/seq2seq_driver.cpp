// The greedy loop over the two TorchScript graphs, mirroring seq2seq_export/runtime/greedy.py.
#include "../seq2seq_driver.hpp"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <numeric>
#include <sstream>

#include "bundle.hpp"

namespace s2s {
namespace {

std::string head_line(const std::string& text) { return text.substr(0, text.find('\n')); }

torch::Device pick_device(const std::string& name) {
    if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    try {
        return torch::Device(name);
    } catch (const c10::Error& e) {
        throw Error("unknown device '" + name + "': use auto, cpu, cuda or cuda:N");
    }
}

torch::jit::Module load_graph(const CheckedFile& file, torch::Device device) {
    std::istringstream in(file.bytes);  // exactly the bytes whose sha256 was checked
    try {
        torch::jit::Module m = torch::jit::load(in, device);
        m.eval();
        return m;
    } catch (const c10::Error& e) {
        throw BundleError(file.path.string() + ": not a loadable TorchScript module (" +
                          head_line(e.what_without_backtrace()) + ")");
    }
}

std::vector<torch::Tensor> as_tensors(const c10::IValue& v) {
    if (v.isTensor()) return {v.toTensor()};
    std::vector<torch::Tensor> out;
    for (const auto& e : v.toTupleRef().elements()) out.push_back(e.toTensor());
    return out;
}

// Right-pad id lists into (B, S) int64 with S >= 1; lengths (B,) are the true lengths (0 allowed).
std::pair<torch::Tensor, torch::Tensor> pad_batch(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id) {
    const auto n = static_cast<int64_t>(seqs.size());
    auto lengths = torch::empty({n}, torch::kInt64);  // (B,)
    auto len = lengths.accessor<int64_t, 1>();
    int64_t longest = 1;
    for (int64_t i = 0; i < n; ++i) {
        len[i] = static_cast<int64_t>(seqs[i].size());
        longest = std::max<int64_t>(longest, seqs[i].size());
    }
    auto src = torch::full({n, longest}, pad_id, torch::kInt64);  // (B, S)
    auto acc = src.accessor<int64_t, 2>();
    for (int64_t i = 0; i < n; ++i)
        std::copy(seqs[i].begin(), seqs[i].end(), &acc[i][0]);
    return {src, lengths};
}

}  // namespace

struct Translator::Impl {
    Bundle bundle;
    Options options;
    torch::Device device;
    torch::jit::Module encoder, decoder_step;

    // The carried tensors (bundle.carried order), taken from the encoder's outputs.
    std::vector<torch::Tensor> encode(const torch::Tensor& src, const torch::Tensor& lengths) {
        std::vector<c10::IValue> feeds;
        const Roles& roles = bundle.roles;
        for (const auto& in : bundle.encoder.inputs) {
            if (in.name != roles.src_tokens && in.name != roles.src_lengths)
                throw BundleError("manifest: encoder input '" + in.name + "' is not fed by this driver");
            feeds.emplace_back((in.name == roles.src_tokens ? src : lengths).to(device));
        }
        const auto outs = as_tensors(encoder.forward(feeds));
        std::vector<torch::Tensor> carried;
        for (const auto& link : bundle.carried) carried.push_back(outs.at(bundle.encoder.output_index(link.encoder_output)));
        return carried;
    }

    // prev (B,) -> next tokens (B,); replaces the state tensors in `carried`, keeps the memory ones.
    // Feeds exactly the decoder inputs the manifest declares (load_bundle checked that each one but
    // prev_tokens is a carried tensor); outputs the loop does not need (logits, attention) are dropped.
    torch::Tensor step(const torch::Tensor& prev, std::vector<torch::Tensor>& carried) {
        std::vector<c10::IValue> feeds;
        for (const auto& in : bundle.decoder_step.inputs) {
            auto link = std::find_if(bundle.carried.begin(), bundle.carried.end(),
                                     [&](const CarriedLink& l) { return l.decoder_input == in.name; });
            feeds.emplace_back(link == bundle.carried.end() ? prev : carried[link - bundle.carried.begin()]);
        }
        const auto outs = as_tensors(decoder_step.forward(feeds));
        for (size_t i = 0; i < carried.size(); ++i)
            if (bundle.carried[i].is_state())
                carried[i] = outs.at(bundle.decoder_step.output_index(bundle.carried[i].decoder_output));
        return outs.at(bundle.decoder_step.output_index(bundle.roles.next_tokens));
    }

    // One batch; each row's tokens without <sos>/<eos>. Rows that emit <eos> leave the batch.
    std::vector<std::vector<int64_t>> greedy_decode(const std::vector<std::vector<int64_t>>& seqs) {
        const auto n = static_cast<int64_t>(seqs.size());
        std::vector<std::vector<int64_t>> out(n);
        if (n == 0) return out;
        auto [src, lengths] = pad_batch(seqs, *bundle.text.src.pad_id);
        auto carried = encode(src, lengths);
        std::vector<int64_t> active(n);
        std::iota(active.begin(), active.end(), 0);
        auto prev = torch::full({n}, bundle.start_id, torch::TensorOptions(torch::kInt64).device(device));
        const int64_t max_len = options.max_len.value_or(bundle.max_len);
        for (int64_t t = 0; t < max_len; ++t) {
            auto nxt = step(prev, carried).to(torch::kCPU).contiguous();  // (B,) int64
            const int64_t* tok = nxt.data_ptr<int64_t>();
            std::vector<int64_t> keep, still_active;
            for (size_t r = 0; r < active.size(); ++r) {
                if (tok[r] == bundle.end_id) continue;
                out[active[r]].push_back(tok[r]);
                keep.push_back(static_cast<int64_t>(r));
                still_active.push_back(active[r]);
            }
            if (keep.empty()) break;
            if (keep.size() < active.size()) {
                auto rows = torch::tensor(keep, torch::kInt64);
                nxt = nxt.index_select(0, rows);
                rows = rows.to(device);
                for (size_t i = 0; i < carried.size(); ++i)  // state and memory alike
                    carried[i] = carried[i].index_select(static_cast<int64_t>(bundle.carried[i].batch_axis), rows);
                active = std::move(still_active);
            }
            prev = nxt.to(device);
        }
        return out;
    }
};

Translator::Translator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Translator::Translator(Translator&&) noexcept = default;
Translator& Translator::operator=(Translator&&) noexcept = default;
Translator::~Translator() = default;

Translator Translator::open(const std::string& bundle_dir, const Options& options) {
    // Same checks and messages as seq2seq_export.runtime.translator.
    auto positive = [](const char* name, int64_t value) {
        if (value < 1) throw Error(std::string(name) + " must be a positive integer, got " + std::to_string(value));
    };
    positive("batch_size", options.batch_size);
    positive("threads", options.threads);
    if (options.max_len) positive("max_len", *options.max_len);
    at::set_num_threads(static_cast<int>(std::min<int64_t>(options.threads, 1 << 16)));
    Bundle b = load_bundle(bundle_dir);
    const torch::Device device = pick_device(options.device);
    auto encoder = load_graph(b.encoder_pt, device);
    auto decoder = load_graph(b.decoder_step_pt, device);
    return Translator(std::make_unique<Impl>(Impl{std::move(b), options, device, encoder, decoder}));
}

std::vector<std::vector<int64_t>> Translator::translate_ids(const std::vector<std::string>& inputs,
                                                            int64_t first_line) const {
    // An input with no tokens (encoded as [] or, with src_append_eos, [<eos>]) gives an empty output
    // without decoding, as seq2seq_export.runtime.translator does; the rest are sorted by length
    // (stable) and decoded in batches, then put back in input order.
    const size_t blank = impl_->bundle.text.src_append_eos ? 1 : 0;
    const auto limit = static_cast<size_t>(impl_->bundle.max_src_tokens);
    std::vector<std::vector<int64_t>> seqs;
    for (const auto& text : inputs) {
        seqs.push_back(impl_->bundle.text.encode_source(text));
        if (seqs.back().size() > limit)
            throw InputTooLong("input line " + std::to_string(first_line + static_cast<int64_t>(seqs.size()) - 1) + ": " +
                               std::to_string(seqs.back().size()) + " tokens, more than the " + std::to_string(limit) +
                               " this bundle accepts (decoding.max_src_tokens)");
    }
    std::vector<size_t> order;
    for (size_t i = 0; i < seqs.size(); ++i)
        if (seqs[i].size() > blank) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return seqs[a].size() < seqs[b].size(); });
    std::vector<std::vector<int64_t>> results(seqs.size());
    c10::InferenceMode guard;
    const auto bs = static_cast<size_t>(impl_->options.batch_size);
    for (size_t start = 0; start < order.size(); start += bs) {
        const std::vector<size_t> idx(order.begin() + start, order.begin() + std::min(order.size(), start + bs));
        std::vector<std::vector<int64_t>> batch;
        for (size_t i : idx) batch.push_back(seqs[i]);
        std::vector<std::vector<int64_t>> decoded;
        try {
            decoded = impl_->greedy_decode(batch);
        } catch (const c10::Error& e) {
            throw Error("running the TorchScript graphs failed: " + head_line(e.what_without_backtrace()));
        }
        for (size_t k = 0; k < idx.size(); ++k) results[idx[k]] = std::move(decoded[k]);
    }
    return results;
}

std::vector<std::string> Translator::translate(const std::vector<std::string>& inputs, int64_t first_line) const {
    std::vector<std::string> out;
    for (const auto& ids : translate_ids(inputs, first_line)) out.push_back(impl_->bundle.text.tgt.decode(ids));
    return out;
}

}  // namespace s2s
