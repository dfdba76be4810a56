// The greedy loop over the two TorchScript graphs, mirroring seq2seq_export/runtime/greedy.py, and
// the graph calls beam search (beam.cpp, mirroring runtime/beam.py) makes.
#include "../seq2seq_driver.hpp"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <numeric>
#include <sstream>

#include "beam.hpp"
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

    // prev (B,) -> the step's output `output` (next tokens (B,) or logits (B, V)); replaces the state
    // tensors in `carried`, keeps the memory ones. Feeds exactly the decoder inputs the manifest
    // declares (load_bundle checked that each one but prev_tokens is a carried tensor); outputs the
    // loop does not need (attention) are dropped.
    torch::Tensor step(const torch::Tensor& prev, std::vector<torch::Tensor>& carried, const std::string& output) {
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
        return outs.at(bundle.decoder_step.output_index(output));
    }

    // The given batch rows (any order, may repeat) of every carried tensor, state and memory alike.
    void select(std::vector<torch::Tensor>& carried, const torch::Tensor& rows) const {
        for (size_t i = 0; i < carried.size(); ++i)
            carried[i] = carried[i].index_select(static_cast<int64_t>(bundle.carried[i].batch_axis), rows);
    }

    int64_t max_len() const { return options.max_len.value_or(bundle.max_len); }

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
        for (int64_t t = 0; t < max_len(); ++t) {
            auto nxt = step(prev, carried, bundle.roles.next_tokens).to(torch::kCPU).contiguous();  // (B,) int64
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
                select(carried, rows.to(device));
                active = std::move(still_active);
            }
            prev = nxt.to(device);
        }
        return out;
    }

    // Inputs -> source ids; an input over max_src_tokens throws InputTooLong naming its line.
    std::vector<std::vector<int64_t>> encode_inputs(const std::vector<std::string>& inputs, int64_t first_line) const;
    // decode(batch) -> one Result per source, over batches of the sorted non-empty inputs.
    template <typename Result, typename Decode>
    std::vector<Result> in_batches(const std::vector<std::vector<int64_t>>& seqs, Decode decode) const;

    // One batch by beam search (beam.cpp): each source's n-best list.
    std::vector<std::vector<Scored>> beam_decode(const std::vector<std::vector<int64_t>>& seqs, const SearchOptions& search);
};

std::vector<std::vector<Scored>> Translator::Impl::beam_decode(const std::vector<std::vector<int64_t>>& seqs,
                                                               const SearchOptions& search) {
    // One batch's carried tensors, stepped and reordered by beam_search.
    class BeamBatch : public StepModel {
       public:
        BeamBatch(Impl& impl, std::vector<torch::Tensor> carried) : impl_(impl), carried_(std::move(carried)) {}

        std::vector<float> step_logits(const std::vector<int64_t>& prev, size_t& vocab) override {
            const auto ids = torch::tensor(prev, torch::kInt64).to(impl_.device);
            const auto logits = impl_.step(ids, carried_, impl_.bundle.roles.logits).to(torch::kCPU, torch::kFloat).contiguous();  // (R, V)
            vocab = static_cast<size_t>(logits.size(1));
            return {logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel()};
        }

        void select(const std::vector<int64_t>& rows) override {
            impl_.select(carried_, torch::tensor(rows, torch::kInt64).to(impl_.device));
        }

       private:
        Impl& impl_;
        std::vector<torch::Tensor> carried_;
    };
    if (seqs.empty()) return {};
    auto [src, lengths] = pad_batch(seqs, *bundle.text.src.pad_id);
    BeamBatch batch(*this, encode(src, lengths));
    return beam_search(batch, seqs.size(), search, SearchLimits{bundle.start_id, bundle.end_id, max_len()});
}

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

std::vector<std::vector<int64_t>> Translator::Impl::encode_inputs(const std::vector<std::string>& inputs,
                                                                  int64_t first_line) const {
    const auto limit = static_cast<size_t>(bundle.max_src_tokens);
    std::vector<std::vector<int64_t>> seqs;
    for (const auto& text : inputs) {
        seqs.push_back(bundle.text.encode_source(text));
        if (seqs.back().size() > limit)
            throw InputTooLong("input line " + std::to_string(first_line + static_cast<int64_t>(seqs.size()) - 1) + ": " +
                               std::to_string(seqs.back().size()) + " tokens, more than the " + std::to_string(limit) +
                               " this bundle accepts (decoding.max_src_tokens)");
    }
    return seqs;
}

template <typename Result, typename Decode>
std::vector<Result> Translator::Impl::in_batches(const std::vector<std::vector<int64_t>>& seqs, Decode decode) const {
    // An input with no tokens (encoded as [] or, with src_append_eos, [<eos>]) is not decoded (its
    // result stays Result{}), as seq2seq_export.runtime.translator does; the rest are sorted by
    // length (stable) and decoded in batches, then put back in input order.
    const size_t blank = bundle.text.src_append_eos ? 1 : 0;
    std::vector<size_t> order;
    for (size_t i = 0; i < seqs.size(); ++i)
        if (seqs[i].size() > blank) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return seqs[a].size() < seqs[b].size(); });
    std::vector<Result> results(seqs.size());
    c10::InferenceMode guard;
    const auto bs = static_cast<size_t>(options.batch_size);
    for (size_t start = 0; start < order.size(); start += bs) {
        const std::vector<size_t> idx(order.begin() + start, order.begin() + std::min(order.size(), start + bs));
        std::vector<std::vector<int64_t>> batch;
        for (size_t i : idx) batch.push_back(seqs[i]);
        std::vector<Result> decoded;
        try {
            decoded = decode(batch);
        } catch (const c10::Error& e) {
            throw Error("running the TorchScript graphs failed: " + head_line(e.what_without_backtrace()));
        }
        for (size_t k = 0; k < idx.size(); ++k) results[idx[k]] = std::move(decoded[k]);
    }
    return results;
}

std::vector<std::vector<int64_t>> Translator::translate_ids(const std::vector<std::string>& inputs,
                                                            int64_t first_line) const {
    return impl_->in_batches<std::vector<int64_t>>(impl_->encode_inputs(inputs, first_line),
                                                   [this](const auto& batch) { return impl_->greedy_decode(batch); });
}

std::vector<Translation> Translator::translations(const std::vector<std::string>& inputs, const SearchOptions& search,
                                                  bool scores, int64_t first_line) const {
    check_search(search);
    const auto& tgt = impl_->bundle.text.tgt;
    std::vector<Translation> out;
    for (const auto& text : inputs) out.push_back(Translation{text, {Hypothesis{"", {}, std::nullopt}}});
    if (search.beam_size == 1 && !scores) {
        const auto ids = translate_ids(inputs, first_line);
        for (size_t i = 0; i < ids.size(); ++i) out[i].hypotheses[0] = Hypothesis{tgt.decode(ids[i]), ids[i], std::nullopt};
        return out;
    }
    const auto nbest = impl_->in_batches<std::vector<Scored>>(impl_->encode_inputs(inputs, first_line),
                                                               [&](const auto& batch) { return impl_->beam_decode(batch, search); });
    for (size_t i = 0; i < nbest.size(); ++i) {
        if (nbest[i].empty()) continue;  // not decoded (no tokens), or a model with non-finite logits
        out[i].hypotheses.clear();
        for (const Scored& h : nbest[i]) out[i].hypotheses.push_back(Hypothesis{tgt.decode(h.ids), h.ids, h.score});
    }
    return out;
}

std::vector<std::string> Translator::translate(const std::vector<std::string>& inputs, int64_t first_line) const {
    std::vector<std::string> out;
    for (const auto& ids : translate_ids(inputs, first_line)) out.push_back(impl_->bundle.text.tgt.decode(ids));
    return out;
}

}  // namespace s2s
