"""Eager backend: the reference PyTorch model, driven by the shared greedy loop."""
from __future__ import annotations

import numpy as np
import torch

from ..model import Seq2Seq


class EagerBackend:
    """Runs `Seq2Seq.encode` / `Seq2Seq.decode_step` (the exported graphs' eager twins)."""

    def __init__(self, model: Seq2Seq, device: torch.device | str | None = None):
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def encode(self, src: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        return self.model.encode(torch.from_numpy(src).to(self.device), torch.from_numpy(lengths).to(self.device))

    @torch.inference_mode()
    def step(self, prev_tokens: np.ndarray, state: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        _, nxt, state = self.model.decode_step(torch.from_numpy(prev_tokens).to(self.device), state)
        return nxt.cpu().numpy(), state

    def select(self, state: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        return state[:, torch.from_numpy(rows).to(self.device)]
