"""Vocabularies, tokenizers and the text pipeline (text <-> ids) shared by training and every runtime.

Pure Python on purpose: the onnx runtime path imports this without torch or numpy.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .constants import EOS, EOS_ID, NORMALIZE_STEPS, PAD, PAD_ID, SOS, SOS_ID, SPECIAL_TOKENS, TOKENIZERS, UNK, UNK_ID
from .errors import VocabError


def check_tokenizer(kind: str) -> str:
    """`kind` itself when it names a tokenizer (TOKENIZERS), else a VocabError."""
    if kind not in TOKENIZERS:
        raise VocabError(f"unknown tokenizer {kind!r}: use one of {', '.join(TOKENIZERS)}")
    return kind


def tokenize(text: str, kind: str) -> list[str]:
    """Split text into tokens: every character for 'char', whitespace-separated words for 'space'."""
    return list(text) if check_tokenizer(kind) == "char" else text.split()


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def check_normalize(steps: Sequence[str]) -> tuple[str, ...]:
    """`steps` as a tuple when each names a step of NORMALIZE_STEPS, at most once; else a VocabError."""
    if isinstance(steps, str) or not all(isinstance(s, str) for s in steps):
        raise VocabError(f"normalize must be a list of steps ({', '.join(NORMALIZE_STEPS)}), got {steps!r:.60}")
    for i, step in enumerate(steps):
        if step not in NORMALIZE_STEPS:
            raise VocabError(f"unknown normalize step {step!r:.40}: use {', '.join(NORMALIZE_STEPS)}")
        if step in steps[:i]:
            raise VocabError(f"normalize step {step!r} is listed twice")
    return tuple(steps)


def normalize_text(text: str, steps: Sequence[str]) -> str:
    """`text` through each step in order: 'nfc' (Unicode NFC), 'lower' (ASCII A-Z -> a-z, nothing else).

    Apply it once: the steps together need not be idempotent (NFC turns KELVIN SIGN into 'K')."""
    for step in steps:
        text = unicodedata.normalize("NFC", text) if step == "nfc" else text.translate(_ASCII_LOWER)
    return text


# A 'space' token: a run of non-whitespace. re's \s and str.split() share one definition of
# whitespace (Py_UNICODE_ISSPACE), so matches are exactly the items of text.split().
_WORD = re.compile(r"\S+")


_SLICE = 1 << 16  # characters split at a time when counting words: split()'s speed, a small transient list


class TokenCounter:
    """The tokens of a text fed piece by piece, counted without ever holding its token list."""

    def __init__(self, kind: str):
        self.kind, self.tokens, self._in_word = check_tokenizer(kind), 0, False

    def add(self, piece: str) -> None:
        if self.kind == "char":
            self.tokens += len(piece)
            return
        for start in range(0, len(piece), _SLICE):
            part = piece[start : start + _SLICE]
            # A word cut by a slice or piece boundary was counted on both sides of it.
            self.tokens += len(part.split()) - (self._in_word and not part[0].isspace())
            self._in_word = not part[-1].isspace()


def count_tokens(text: str, kind: str) -> int:
    """len(tokenize(text, kind)) without building the token list (a 10 MB line stays 10 MB)."""
    counter = TokenCounter(kind)
    counter.add(text)
    return counter.tokens


def first_tokens(text: str, kind: str, n: int) -> str:
    """The prefix of `text` that holds exactly its first `n` tokens (all of it if it has fewer)."""
    if check_tokenizer(kind) == "char":
        return text[:n]
    end = 0
    for i, match in enumerate(_WORD.finditer(text)):
        if i == n:
            break
        end = match.end()
    return text[:end]


def detokenize(tokens: Sequence[str], kind: str) -> str:
    """Join tokens back into text: concatenated for 'char', space-joined for 'space'."""
    return ("" if check_tokenizer(kind) == "char" else " ").join(tokens)


@dataclass(frozen=True)
class Vocab:
    """An id <-> token table with its tokenizer and the ids of its special tokens (None if absent)."""

    tokens: tuple[str, ...]
    tokenizer: str  # "char" or "space"
    pad_id: int | None = PAD_ID
    unk_id: int | None = UNK_ID
    sos_id: int | None = SOS_ID
    eos_id: int | None = EOS_ID
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_tokenizer(self.tokenizer)
        index = dict(zip(self.tokens, range(len(self.tokens))))  # C loop: vocabularies may have 10^6 tokens
        if len(index) != len(self.tokens):
            i, tok = next((i, t) for i, t in enumerate(self.tokens) if index[t] != i)
            raise VocabError(f"token {tok!r} appears twice in the vocabulary (ids {i} and {index[tok]})")
        for name in ("pad_id", "unk_id", "sos_id", "eos_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < len(self.tokens):
                raise VocabError(f"{name}={value} is outside the vocabulary (size {len(self.tokens)})")
        object.__setattr__(self, "_index", index)

    @classmethod
    def build(cls, texts: Iterable[str], tokenizer: str, min_freq: int = 1) -> "Vocab":
        """Collect tokens from texts; specials first at fixed ids, then by frequency, ties by token."""
        counts = Counter(tok for text in texts for tok in tokenize(text, tokenizer))
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls(tokens=SPECIAL_TOKENS + tuple(kept), tokenizer=tokenizer)

    def __len__(self) -> int:
        return len(self.tokens)

    def id_of(self, token: str) -> int | None:
        return self._index.get(token)

    def encode(self, text: str, add_eos: bool = False) -> list[int]:
        """Text -> ids; unknown tokens map to <unk> (an error if this vocabulary has none)."""
        ids = []
        for tok in tokenize(text, self.tokenizer):
            i = self._index.get(tok, self.unk_id)
            if i is None:
                raise VocabError(f"token {tok!r} is not in the vocabulary and it has no <unk> token")
            ids.append(i)
        if add_eos:
            if self.eos_id is None:
                raise VocabError("cannot append <eos>: the vocabulary has no end token")
            ids.append(self.eos_id)
        return ids

    def unknown(self, text: str) -> tuple[str, ...]:
        """The tokens of `text` this vocabulary lacks (encode reads them as <unk>), in order."""
        return tuple(tok for tok in tokenize(text, self.tokenizer) if tok not in self._index)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text, stopping at <eos> and dropping <pad> and <sos>."""
        skip = {self.pad_id, self.sos_id}
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in skip:
                continue
            if not 0 <= i < len(self.tokens):
                raise VocabError(f"id {i} is outside the vocabulary (size {len(self.tokens)})")
            out.append(self.tokens[i])
        return detokenize(out, self.tokenizer)

    def to_dict(self) -> dict:
        return {
            "tokenizer": self.tokenizer,
            "tokens": list(self.tokens),
            "specials": {"pad": self.pad_id, "unk": self.unk_id, "sos": self.sos_id, "eos": self.eos_id},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        try:
            sp = d["specials"]
            return cls(
                tokens=tuple(d["tokens"]),
                tokenizer=d["tokenizer"],
                pad_id=sp.get("pad"),
                unk_id=sp.get("unk"),
                sos_id=sp.get("sos"),
                eos_id=sp.get("eos"),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise VocabError(f"malformed vocabulary: missing or bad field {e}") from None


@dataclass(frozen=True)
class TextPipeline:
    """Both vocabularies plus the source rules; turns text into model ids and target ids into text."""

    src: Vocab
    tgt: Vocab
    src_append_eos: bool = False  # append <eos> to every source sequence
    normalize: tuple[str, ...] = ()  # source normalization steps (NORMALIZE_STEPS), applied before tokenizing

    def __post_init__(self) -> None:
        if self.tgt.sos_id is None or self.tgt.eos_id is None:
            raise VocabError("the target vocabulary needs both a start (<sos>) and an end (<eos>) token")
        if self.src.pad_id is None or self.tgt.pad_id is None:
            raise VocabError("both vocabularies need a padding token (<pad>)")
        if self.src_append_eos and self.src.eos_id is None:
            raise VocabError("src_append_eos is set but the source vocabulary has no <eos> token")
        object.__setattr__(self, "normalize", check_normalize(self.normalize))

    def normalize_source(self, text: str) -> str:
        """A source text as the model reads it: through the normalize steps (once; see normalize_text)."""
        return normalize_text(text, self.normalize)

    def encode_source(self, text: str, normalized: bool = False) -> list[int]:
        """Source text -> ids (normalized first unless `normalized` says it already is)."""
        return self.src.encode(text if normalized else self.normalize_source(text), add_eos=self.src_append_eos)

    def unknown_source(self, text: str) -> tuple[str, ...]:
        """The tokens of a normalized source text that its vocabulary lacks (they read as <unk>), in order."""
        return self.src.unknown(text)

    def encode_target(self, text: str) -> list[int]:
        """Training target: <sos> y1 .. yn <eos>."""
        return [self.tgt.sos_id] + self.tgt.encode(text) + [self.tgt.eos_id]

    def decode_target(self, ids: Iterable[int]) -> str:
        return self.tgt.decode(ids)

    def to_dict(self) -> dict:
        """The vocabularies; "normalize" only when there are steps (absent = none: older readers still read it)."""
        d = {"src": self.src.to_dict(), "tgt": self.tgt.to_dict(), "src_append_eos": self.src_append_eos}
        return {**d, "normalize": list(self.normalize)} if self.normalize else d

    @classmethod
    def from_dict(cls, d: dict) -> "TextPipeline":
        try:
            return cls(Vocab.from_dict(d["src"]), Vocab.from_dict(d["tgt"]), bool(d.get("src_append_eos", False)),
                       check_normalize(d.get("normalize", ())))
        except (KeyError, TypeError) as e:
            raise VocabError(f"malformed vocabularies: missing field {e}") from None


__all__ = ["Vocab", "TextPipeline", "TokenCounter", "check_tokenizer", "check_normalize", "normalize_text", "tokenize", "detokenize", "count_tokens", "first_tokens",
           "PAD", "UNK", "SOS", "EOS"]
