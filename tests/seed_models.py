"""The seed tutorial's module layout (sequence-first GRUs), shared by the import and model tests."""

from __future__ import annotations

import torch.nn as nn


class SeedEncoder(nn.Module):
    """The seed tutorial's encoder: sequence-first GRU, returns its final hidden state."""

    def __init__(self, vocab: int, emb: int, hid: int, layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.rnn = nn.GRU(emb, hid, layers)
        self.dropout = nn.Dropout(0.5)

    def forward(self, src):  # src (S, B)
        _, hidden = self.rnn(self.dropout(self.embedding(src)))
        return hidden  # (L, B, H)


class SeedDecoder(nn.Module):
    """The seed tutorial's decoder: one step per call."""

    def __init__(self, vocab: int, emb: int, hid: int, layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.rnn = nn.GRU(emb, hid, layers)
        self.fc_out = nn.Linear(hid, vocab)
        self.dropout = nn.Dropout(0.5)

    def forward(self, token, hidden):  # token (B,), hidden (L, B, H)
        output, hidden = self.rnn(self.dropout(self.embedding(token.unsqueeze(0))), hidden)
        return self.fc_out(output.squeeze(0)), hidden


class SeedSeq2Seq(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
