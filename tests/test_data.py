import pytest

from seq2seq_export.data import load_dataset, split_of
from seq2seq_export.errors import DataError, VocabError


def test_toy_is_deterministic_by_seed_and_reverses_digits():
    a, b, c = load_dataset("toy", seed=3), load_dataset("toy", seed=3), load_dataset("toy", seed=4)
    assert a == b and a.train != c.train
    assert (len(a.train), len(a.valid), len(a.test)) == (20_000, 1_000, 1_000)
    assert (a.src_tokenizer, a.tgt_tokenizer) == ("space", "space")
    for src, tgt in a.train[:200] + a.test[:200]:
        digits = src.split()
        assert 3 <= len(digits) <= 10 and set("".join(digits)) <= set("123456789")
        assert tgt.split() == digits[::-1]


def test_split_of_is_a_fixed_function_of_the_key():
    # sha1-based: these assignments must never change, or old test sets would leak into training
    assert [split_of(w) for w in ("hello", "world", "cat", "python", "export")] == [0, 0, 0, 2, 1]


def test_cmudict_pairs_and_stable_disjoint_splits():
    d = load_dataset("cmudict")
    assert (d.src_tokenizer, d.tgt_tokenizer) == ("char", "space")
    total = len(d.train) + len(d.valid) + len(d.test)
    assert total > 120_000
    assert 0.04 < len(d.test) / total < 0.06 and 0.04 < len(d.valid) / total < 0.06
    words = {name: {s for s, _ in getattr(d, name)} for name in ("train", "valid", "test")}
    assert not words["train"] & words["test"] and not words["train"] & words["valid"]
    assert all(split_of(w) == 2 for w in list(words["test"])[:500])
    pron = dict(d.train)
    assert pron["hello"] in ("HH AH0 L OW1", "HH EH0 L OW1")  # stress digits kept
    assert dict(d.test)["python"] == "P AY1 TH AA0 N"


def _write_tsv(path, n=200, extra=""):
    lines = [f"word{i} here\tmot{i} là\tignored column" for i in range(n)]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def test_tsv_parsing_tokenizers_and_max_tokens(tmp_path):
    path = _write_tsv(tmp_path / "pairs.tsv")
    d = load_dataset(f"tsv:{path}")
    pairs = d.train + d.valid + d.test
    assert len(pairs) == 200 and ("word0 here", "mot0 là") in pairs
    assert load_dataset(f"tsv:{path}") == d
    assert (d.src_tokenizer, d.tgt_tokenizer) == ("space", "space")
    char = load_dataset(f"tsv:{path}", src_tokenizer="char")
    assert char.src_tokenizer == "char"
    short = load_dataset(f"tsv:{path}", src_tokenizer="char", max_tokens=11)  # "word99 here": 11 chars
    assert {s for s, _ in short.train + short.valid + short.test} == {f"word{i} here" for i in range(100)}
    with pytest.raises(VocabError, match="unknown tokenizer"):
        load_dataset(f"tsv:{path}", tgt_tokenizer="bpe")


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"no tab on this line\n", "202: expected source<TAB>target, found no tab"),
        (b"\ttarget only\n", "202: empty source side"),
        (b"source only\t  \n", "202: empty target side"),
        (b"caf\xe9\tcafe\n", "202: not valid UTF-8"),
    ],
)
def test_malformed_tsv_lines_name_file_and_line(tmp_path, bad, message):
    path = _write_tsv(tmp_path / "bad.tsv", extra="\n")  # line 201 is blank (skipped)
    path.write_bytes(path.read_bytes() + bad)
    with pytest.raises(DataError) as err:
        load_dataset(f"tsv:{path}")
    assert str(err.value) == f"{path}:{message}" or str(err.value).startswith(f"{path}:{message}")
    assert "\n" not in str(err.value)


def test_unknown_and_unusable_datasets(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'wmt'"):
        load_dataset("wmt")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(f"tsv:{tmp_path / 'missing.tsv'}")
    with pytest.raises(DataError, match="split is empty"):
        load_dataset(f"tsv:{_write_tsv(tmp_path / 'one.tsv', n=1)}")
