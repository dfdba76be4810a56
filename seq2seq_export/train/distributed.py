"""torchrun: one run over several processes with DistributedDataParallel (gloo on CPU, NCCL on CUDA).

Every rank draws the same length-bucketed global batches (same seed) and takes its contiguous share of
each, padded as wide as the whole batch. Its loss is summed over its share's target tokens and scaled
by world size / the global batch's token count; DDP averages the gradients over the ranks, so they add
up to the gradient of the mean loss over the whole batch, as one process computes it. Clipping, the
optimizer, the learning rate and the weight average then see the same values on every rank.

Rank 0 alone validates, logs and writes the run directory; it decides when to stop, and its clock is
the budget's clock. An error in the setup or the final test on any rank ends every rank with exit 2,
rank 0 reporting it; a rank that dies otherwise is torchrun's to clean up (it ends the others).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist

from ..errors import Seq2SeqExportError
from .batching import EncodedPairs, collate

T = TypeVar("T")
RANK_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK")  # what torchrun sets in every process it starts
# Rank 0 validates and tests alone while the others wait in their next collective: give it an hour.
COLLECTIVE_TIMEOUT = timedelta(hours=1)
STOPS = ("", "time", "steps", "interrupt")  # should_stop's answers as numbers, for one broadcast


class RankError(Seq2SeqExportError):
    """Another rank's error (or, on ranks above 0, any rank's): rank 0 reports it, the others exit quietly."""


def launched_rank() -> int:
    """This process's torchrun rank; 0 outside torchrun."""
    return int(os.environ.get("RANK", "0")) if all(k in os.environ for k in RANK_ENV) else 0


@dataclass(frozen=True)
class Ranks:
    world: int  # processes in the run
    rank: int  # this one's: 0 validates, logs and writes
    backend: str  # gloo (CPU) or nccl (CUDA)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def describe(self, batch_size: int) -> str:
        return (
            f"distributed: {self.world} ranks ({self.backend}), global batch {batch_size}, "
            f"per-rank ~{batch_size / self.world:g}"
        )

    def share(self, rows: Sequence[int]) -> Sequence[int]:
        """This rank's contiguous part of a global batch; the first len % world ranks take one more."""
        size, extra = divmod(len(rows), self.world)
        start = self.rank * size + min(self.rank, extra)
        return rows[start : start + size + (self.rank < extra)]


@contextlib.contextmanager
def joined(device: str) -> Iterator[Ranks | None]:
    """Join torchrun's process group for a `with` block; None when this process was not started by torchrun."""
    if not all(k in os.environ for k in RANK_ENV):
        yield None
        return
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # one GPU per process on each node
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    try:
        yield Ranks(dist.get_world_size(), dist.get_rank(), backend)
        dist.barrier()  # every rank has its result before any leaves the group
    finally:
        dist.destroy_process_group()


def settle(ranks: Ranks | None, fn: Callable[[], T]) -> T:
    """fn() on every rank; a library error on any of them raises on all: rank 0 raises it (its own as is,
    another rank's as a RankError naming the rank), the others a RankError."""
    if ranks is None:
        return fn()
    result: Any = None
    error: Seq2SeqExportError | None = None
    try:
        result = fn()
    except Seq2SeqExportError as e:
        error = e
    messages: list[str | None] = [None] * ranks.world
    dist.all_gather_object(messages, None if error is None else str(error))
    failed = [(rank, message) for rank, message in enumerate(messages) if message is not None]
    if not failed:
        return result
    if error is not None and ranks.main:
        raise error
    rank, message = failed[0]
    raise RankError(message if rank == 0 else f"rank {rank}: {message}")


def from_main(ranks: Ranks | None, fn: Callable[[], T]) -> T:
    """fn() on rank 0 alone; every rank gets its result, or its error as settle() raises it."""
    if ranks is None:
        return fn()
    box = [settle(ranks, fn) if ranks.main else settle(ranks, lambda: None)]
    dist.broadcast_object_list(box, 0)
    return cast(T, box[0])


class Group:
    """A run's ranks, its model wrapped in DDP, and what the loop asks of them at each step."""

    def __init__(self, ranks: Ranks, model: torch.nn.Module, device: torch.device, seed: int):
        from torch.nn.parallel import DistributedDataParallel

        self.ranks, self.device, self.seed = ranks, device, seed
        self.model = DistributedDataParallel(model)  # copies rank 0's weights to every rank (the same already)

    def shard(
        self, data: EncodedPairs, rows: Sequence[int], pad: int, step: int
    ) -> tuple[tuple[torch.Tensor, ...], float]:
        """This rank's share of the global batch `rows`, collated as wide as the whole batch (so teacher
        forcing draws as often as in one process), and the weight of its summed loss.

        A batch of fewer pairs than ranks leaves some ranks without one: they run the batch's first pair
        with weight 0, since DDP needs every rank's backward for its allreduce (and CUDA's RNN kernels
        have refused empty batches, pytorch/pytorch#71696)."""
        mine, tokens = self.ranks.share(rows), sum(len(data.tgt[i]) - 1 for i in rows)  # <eos>, not <sos>
        weight = self.ranks.world / tokens if mine else 0.0
        if self.ranks.rank:
            # Dropout masks: each rank its own stream, a function of (seed, rank, step) so --resume repeats it.
            torch.manual_seed((self.seed * 1_000_003 + step) * 1009 + self.ranks.rank)
        return collate(data, mine or rows[:1], pad, self.device, pad_like=rows), weight

    def stop(self, stop: str | None, elapsed_s: float) -> tuple[str | None, float]:
        """Rank 0's stop decision and budget clock, on every rank."""
        decision = torch.tensor([STOPS.index(stop or ""), elapsed_s], dtype=torch.float64, device=self.device)
        dist.broadcast(decision, 0)
        return STOPS[int(decision[0])] or None, float(decision[1])
