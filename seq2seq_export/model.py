"""The seed tutorial's GRU encoder/decoder, with the seed's parameter names, done properly; plus the
variants of ModelConfig: LSTM cells, a bidirectional encoder, Bahdanau or Luong attention.

Parameter names match the seed (`encoder.embedding`, `encoder.rnn`, `decoder.embedding`,
`decoder.rnn`, `decoder.fc_out`), so a state_dict saved from the seed's code loads unchanged.
Variants add `encoder.bridge_*` (bidirectional) and `decoder.attention.*` (attention).
Encoder.forward and Decoder.step / forward_sequence are torch.jit.script-able for every variant:
the variant switches are module constants, so scripting compiles only the branches a model uses.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import BahdanauAttention, LuongAttention
from .config import ModelConfig
from .errors import ConfigError
from .iospec import state_names


def reverse_rows(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row of x (B, S) or (B, S, D) inside its true length; padding stays where it is.

    Done in the graph (one Gather), so drivers feed sources in reading order for every model.
    """
    pos = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, S)
    last = (lengths - 1).unsqueeze(1)  # (B, 1)
    index = torch.where(pos <= last, last - pos, pos)  # (B, S)
    if x.dim() == 3:
        index = index.unsqueeze(2).expand(-1, -1, x.shape[2])  # (B, S, D)
    return x.gather(1, index)


def source_mask(lengths: torch.Tensor, src_len: int) -> torch.Tensor:
    """(B,) true lengths -> (B, S) float32: 1.0 at real positions, 0.0 at padding."""
    pos = torch.arange(src_len, device=lengths.device).unsqueeze(0)  # (1, S)
    return (pos < lengths.unsqueeze(1)).to(torch.float32)


def lstm_final_cell(x: torch.Tensor, out: torch.Tensor, w: list[torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
    """An LSTM layer's cell state after each row's last real position, from its outputs.

    The fused LSTM returns the cell only after the padded end. With every h_(t-1) known (the
    outputs), all gates come from two batched matmuls, and c_T = sum_k (f_(k+1) .. f_T) i_k g_k is
    a masked sum whose forget-gate products are taken in log space (no division, no overflow).
    x (B, S, In), out (B, S, H), w = [w_ih, w_hh, b_ih, b_hh], lengths (B,) -> cell (B, H).
    """
    prev = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], 1)  # (B, S, H): h_(t-1), h_(-1) = 0
    i, f, g, _ = (F.linear(x, w[0], w[2]) + F.linear(prev, w[1], w[3])).chunk(4, 2)  # (B, S, H) each
    log_f = torch.cumsum(F.logsigmoid(f), 1)  # (B, S, H): log(f_0 .. f_t)
    last = (lengths - 1).clamp(min=0).view(-1, 1, 1)  # (B, 1, 1)
    log_last = log_f.gather(1, last.expand(-1, 1, log_f.shape[2]))  # (B, 1, H)
    after = torch.arange(x.shape[1], device=x.device).view(1, -1, 1) > last  # (B, S, 1): past the end
    decay = torch.exp((log_last - log_f).masked_fill(after, -1e30))  # (B, S, H): exactly 0 past the end (finite fill)
    return (decay * torch.sigmoid(i) * torch.tanh(g)).sum(1)  # (B, H)


class Encoder(nn.Module):
    """Embedding -> stacked GRU/LSTM, one or both directions, each run on the rows' true lengths.

    Outputs (B, S, De) are exact zeros at padding; final states (L, B, H) never see padding.
    """

    __constants__ = ["is_lstm", "bidirectional", "reverse_source", "num_layers"]  # scripting keeps only used branches

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_layers = cfg.num_layers
        self.hidden_dim = cfg.encoder_dim  # per direction; the bridge maps 2 x this to the decoder's size
        self.is_lstm = cfg.rnn == "lstm"
        self.bidirectional = cfg.bidirectional_encoder
        self.reverse_source = cfg.reverse_source
        self.embedding = nn.Embedding(cfg.src_vocab_size, cfg.emb_dim)
        rnn = nn.LSTM if self.is_lstm else nn.GRU
        self.rnn = rnn(
            cfg.emb_dim, cfg.encoder_dim, num_layers=cfg.num_layers, batch_first=True, bidirectional=self.bidirectional
        )
        self.dropout = nn.Dropout(cfg.dropout)
        # The bridge maps both directions' finals (2 x encoder_dim) to the decoder's state size, per state name.
        self.bridge_hidden = nn.Linear(2 * cfg.encoder_dim, cfg.hidden_dim) if self.bidirectional else None
        self.bridge_cell = (
            nn.Linear(2 * cfg.encoder_dim, cfg.hidden_dim) if self.bidirectional and self.is_lstm else None
        )

    def _run(
        self, x: torch.Tensor, lengths: torch.Tensor, w: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One layer, one direction: x (B, S, In) -> outputs (B, S, H), finals [hidden (B, H)(, cell (B, H))].

        A forward RNN's output at t < length never sees the padding after it, so the state at
        position length-1 is exactly the state of the unpadded sequence.
        """
        h0 = x.new_zeros(1, x.shape[0], self.hidden_dim)  # (1, B, H)
        last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, self.hidden_dim)  # (B, 1, H)
        nonempty = (lengths > 0).view(-1, 1).to(x.dtype)  # (B, 1): empty input -> zero state
        if self.is_lstm:
            out, _, _ = torch.lstm(x, [h0, h0], w, True, 1, 0.0, False, False, True)
            cell = lstm_final_cell(x, out, w, lengths) * nonempty
            return out, [out.gather(1, last).squeeze(1) * nonempty, cell]
        out, _ = torch.gru(x, h0, w, True, 1, 0.0, False, False, True)
        return out, [out.gather(1, last).squeeze(1) * nonempty]

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """src (B, S) int64, src_lengths (B,) int64 -> outputs (B, S, De), states [hidden (L, B, H)(, cell)]."""
        if self.reverse_source:
            src = reverse_rows(src, src_lengths)
        x = self.dropout(self.embedding(src))  # (B, S, E)
        weights = self.rnn._flat_weights  # per layer and direction: w_ih, w_hh, b_ih, b_hh
        dirs = 2 if self.bidirectional else 1
        finals: list[list[torch.Tensor]] = [
            [] for _ in range(2 if self.is_lstm else 1)
        ]  # per state: (B, dirs*H) per layer
        for layer in range(self.num_layers):
            if layer > 0:
                x = self.dropout(x)
            out, layer_finals = self._run(x, src_lengths, weights[4 * dirs * layer : 4 * dirs * layer + 4])
            if self.bidirectional:
                # The backward direction reads each row reversed inside its length: it never sees padding.
                k = 4 * dirs * layer + 4
                back, back_finals = self._run(reverse_rows(x, src_lengths), src_lengths, weights[k : k + 4])
                out = torch.cat([out, reverse_rows(back, src_lengths)], 2)  # (B, S, 2H)
                layer_finals = [torch.cat([a, b], 1) for a, b in zip(layer_finals, back_finals)]  # (B, 2H) each
            for i, final in enumerate(layer_finals):
                finals[i].append(final)
            x = out
        x = x * source_mask(src_lengths, src.shape[1]).unsqueeze(2)  # (B, S, De): exact zeros at padding
        if self.reverse_source:
            x = reverse_rows(x, src_lengths)  # back to reading order, so attention aligns with the input
        states = [torch.stack(f, 0) for f in finals]  # (L, B, dirs*H) each
        if self.bridge_hidden is not None:
            states[0] = torch.tanh(self.bridge_hidden(states[0]))  # (L, B, H)
        if self.bridge_cell is not None:
            states[1] = self.bridge_cell(states[1])  # (L, B, H): a cell is not squashed
        return x, states


class Decoder(nn.Module):
    """Embedding -> stacked GRU/LSTM (-> attention) -> Linear, one step per call or a whole teacher-forced target.

    Bahdanau: the previous top-layer hidden attends first, the context joins the embedding as RNN
    input. Luong: the RNN steps first, its output attends, tanh(W_c [context; h]) feeds fc_out.
    """

    __constants__ = ["is_lstm", "bahdanau", "luong", "num_layers", "inner_dropout"]

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.is_lstm = cfg.rnn == "lstm"
        self.bahdanau = cfg.attention == "bahdanau"
        self.luong = cfg.attention == "luong"
        self.num_layers = cfg.num_layers
        self.inner_dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.embedding = nn.Embedding(cfg.tgt_vocab_size, cfg.emb_dim)
        rnn_input = cfg.emb_dim + (cfg.encoder_output_dim if self.bahdanau else 0)
        rnn = nn.LSTM if self.is_lstm else nn.GRU
        self.rnn = rnn(
            rnn_input, cfg.hidden_dim, num_layers=cfg.num_layers, dropout=self.inner_dropout, batch_first=True
        )
        if self.bahdanau:
            self.attention = BahdanauAttention(cfg.hidden_dim, cfg.encoder_output_dim)
        elif self.luong:
            self.attention = LuongAttention(cfg.hidden_dim, cfg.encoder_output_dim, cfg.attention_score)
        self.fc_out = nn.Linear(cfg.hidden_dim, cfg.tgt_vocab_size)
        self.dropout = nn.Dropout(cfg.dropout)

    def _rnn(self, x: torch.Tensor, states: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (B, T, In), states [(L, B, H)..] -> outputs (B, T, H), new states (what nn.GRU / nn.LSTM compute)."""
        w = self.rnn._flat_weights
        if self.is_lstm:
            out, h, c = torch.lstm(x, states, w, True, self.num_layers, self.inner_dropout, self.training, False, True)
            return out, [h, c]
        out, h = torch.gru(x, states[0], w, True, self.num_layers, self.inner_dropout, self.training, False, True)
        return out, [h]

    def forward_sequence(
        self,
        tgt_in: torch.Tensor,
        states: list[torch.Tensor],
        memory: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """Teacher forcing on every step in one RNN call (no attention or Luong; not Bahdanau):
        tgt_in (B, T), memory (B, S, De), mask (B, S) -> logits (B, T, V), states, weights (B, T, S) or None."""
        assert not self.bahdanau, "Bahdanau attention feeds each step's context into the RNN: use step()"
        x = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        out, states = self._rnn(x, states)  # (B, T, H)
        weights: torch.Tensor | None = None
        if self.luong:
            assert memory is not None and mask is not None
            out, weights = self.attention(out, memory, mask)  # (B, T, H), (B, T, S)
        return self.fc_out(out), states, weights

    def attention_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """Bahdanau only: the key projection of the memory, once per source: (B, S, De) -> (B, S, H)."""
        assert self.bahdanau
        return self.attention.keys(memory)

    def step(
        self,
        prev_tokens: torch.Tensor,
        states: list[torch.Tensor],
        memory: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """prev_tokens (B,), states [(L, B, H)..], memory (B, S, De), mask (B, S), keys (B, S, H)
        (Bahdanau: attention_keys(memory)) -> logits (B, V), new states, attention weights (B, S) or None."""
        if not self.bahdanau:
            logits, states, weights = self.forward_sequence(prev_tokens.unsqueeze(1), states, memory, mask)
            return logits.squeeze(1), states, None if weights is None else weights.squeeze(1)
        assert memory is not None and mask is not None and keys is not None
        x = self.dropout(self.embedding(prev_tokens)).unsqueeze(1)  # (B, 1, E)
        context, weights = self.attention(states[0][-1].unsqueeze(1), memory, mask, keys)  # (B, 1, De), (B, 1, S)
        out, states = self._rnn(torch.cat([x, context], 2), states)  # (B, 1, H)
        return self.fc_out(out.squeeze(1)), states, weights.squeeze(1)


class GraphEncoder(nn.Module):
    """What the exported encoder graph computes, outputs in iospec order: one (L, B, H) tensor per
    state name, then for attention models encoder_outputs (B, S, De) and src_mask (B, S), and for
    Bahdanau attention_keys (B, S, H). Seq2Seq.encode and the export wrappers both run this.

    Holds only the encoder (and Bahdanau's key projection, run here once per source), so a scripted
    encoder graph carries no decoder weights.
    """

    __constants__ = ["attention"]

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.encoder = model.encoder
        self.attention = model.config.attention != "none"
        self.key_proj = model.decoder.attention.key_proj if model.decoder.bahdanau else None

    def outputs(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor) -> list[torch.Tensor]:
        memory, states = self.encoder(src_tokens, src_lengths)  # (B, S, De), [(L, B, H)..]
        if not self.attention:
            return states
        out = states + [memory, source_mask(src_lengths, src_tokens.shape[1])]
        if self.key_proj is not None:
            out.append(self.key_proj(memory))  # (B, S, H): attention_keys
        return out


class Seq2Seq(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        teacher_forcing_ratio: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Training pass: tgt_in (B, T) is `<sos> y1 .. y(n)` padded; returns logits (B, T, V).

        With teacher_forcing_ratio < 1, each step feeds the gold token with that probability
        (one draw per step for the whole batch, as the seed does) and the model's argmax otherwise.
        """
        memory, states = self.encoder(src, src_lengths)  # (B, S, De), [(L, B, H)..]
        mask = source_mask(src_lengths, src.shape[1])  # (B, S)
        forced = teacher_forcing_ratio >= 1.0
        if forced and not self.decoder.bahdanau:
            return self.decoder.forward_sequence(tgt_in, states, memory, mask)[0]
        keys = self.decoder.attention_keys(memory) if self.decoder.bahdanau else None  # (B, S, H), once
        steps = []
        token = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            logits, states, _ = self.decoder.step(token, states, memory, mask, keys)
            steps.append(logits)
            if t + 1 < tgt_in.shape[1]:
                teacher = forced or float(torch.rand((), generator=generator)) < teacher_forcing_ratio  # CPU draw
                token = tgt_in[:, t + 1] if teacher else logits.argmax(-1)
        return torch.stack(steps, 1)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The exported encoder graph (GraphEncoder.outputs): outputs in iospec order."""
        return tuple(GraphEncoder(self).outputs(src, src_lengths))

    def decode_step(self, prev_tokens: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The exported decoder-step graph: prev_tokens (B,), *states, *memory (iospec input order) ->
        logits (B, V), next_tokens (B,), *states_out (L, B, H), and attention (B, S) for attention models."""
        n = len(state_names(self.config))
        logits, states, weights = self.decoder.step(prev_tokens, list(inputs[:n]), *inputs[n:])
        out = (logits, logits.argmax(-1), *states)
        return out if weights is None else (*out, weights)


def sequence_loss(
    logits: torch.Tensor, targets: torch.Tensor, pad_id: int, label_smoothing: float = 0.0, reduction: str = "mean"
) -> torch.Tensor:
    """Mean (or with reduction="sum", summed) cross-entropy over non-pad target positions: logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


def select_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cpu' / 'cuda' as asked (ConfigError if there is no CUDA)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} was asked for but CUDA is not available to this torch "
            f"({torch.__version__}): use --device cpu or auto"
        )
    return device
