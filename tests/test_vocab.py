import pytest

from seq2seq_export.constants import EOS_ID, PAD_ID, SOS_ID, SPECIAL_TOKENS, UNK_ID
from seq2seq_export.errors import VocabError
from seq2seq_export.vocab import TextPipeline, Vocab, check_normalize, detokenize, normalize_text, tokenize


def test_tokenizers_split_and_join():
    assert tokenize("ab c", "char") == ["a", "b", " ", "c"]
    assert tokenize(" AH0  B ", "space") == ["AH0", "B"]
    assert detokenize(["a", "b"], "char") == "ab"
    assert detokenize(["AH0", "B"], "space") == "AH0 B"
    with pytest.raises(VocabError, match="unknown tokenizer 'bpe'"):
        tokenize("x", "bpe")


def test_build_puts_specials_first_then_by_frequency_then_token():
    v = Vocab.build(["b a a", "c b a"], "space")
    assert v.tokens[:4] == SPECIAL_TOKENS
    assert v.tokens[4:] == ("a", "b", "c")  # a x3, b x2, c x1
    assert (v.pad_id, v.unk_id, v.sos_id, v.eos_id) == (PAD_ID, UNK_ID, SOS_ID, EOS_ID)
    assert Vocab.build(["aab", "b"], "char", min_freq=2).tokens[4:] == ("a", "b")


def test_encode_decode_round_trip_and_unknown_tokens():
    v = Vocab.build(["hello"], "char")
    ids = v.encode("hello", add_eos=True)
    assert ids[-1] == EOS_ID and v.decode(ids) == "hello"
    assert v.encode("hex") == [v.id_of("h"), v.id_of("e"), UNK_ID]
    # decode stops at <eos> and drops <pad>/<sos>
    assert v.decode([SOS_ID, v.id_of("h"), PAD_ID, v.id_of("e"), EOS_ID, v.id_of("l")]) == "he"
    with pytest.raises(VocabError, match="outside the vocabulary"):
        v.decode([len(v)])


def test_vocab_without_unk_rejects_unknown_tokens():
    v = Vocab(tokens=("<pad>", "a"), tokenizer="char", unk_id=None, sos_id=None, eos_id=None)
    with pytest.raises(VocabError, match="no <unk>"):
        v.encode("ab")


def test_invalid_vocabularies():
    with pytest.raises(VocabError, match="appears twice"):
        Vocab(tokens=("a", "a"), tokenizer="char", pad_id=None, unk_id=None, sos_id=None, eos_id=None)
    with pytest.raises(VocabError, match="eos_id=9 is outside"):
        Vocab(tokens=SPECIAL_TOKENS, tokenizer="char", eos_id=9)
    with pytest.raises(VocabError, match="malformed vocabulary"):
        Vocab.from_dict({"tokens": ["a"]})


def test_pipeline_targets_are_wrapped_and_round_trip_through_dict():
    text = TextPipeline(Vocab.build(["abc"], "char"), Vocab.build(["X Y"], "space"), src_append_eos=True)
    assert text.encode_source("ab") == [text.src.id_of("a"), text.src.id_of("b"), EOS_ID]
    tgt = text.encode_target("Y X")
    assert tgt[0] == SOS_ID and tgt[-1] == EOS_ID and text.decode_target(tgt) == "Y X"
    assert TextPipeline.from_dict(text.to_dict()) == text


def test_pipeline_needs_start_and_end_tokens():
    no_sos = Vocab(tokens=("<pad>", "x"), tokenizer="space", unk_id=None, sos_id=None, eos_id=None)
    with pytest.raises(VocabError, match="start"):
        TextPipeline(Vocab.build(["a"], "char"), no_sos)


# (text, steps, normalized): NFC composes, ASCII-only lower-casing, and the order of the steps.
NORMALIZED = [
    ("HeLLo World", ("lower",), "hello world"),
    ("e\u0301", ("nfc",), "\u00e9"),
    ("E\u0301COLE", ("nfc", "lower"), "\u00c9cole"),  # NFC first: \u00c9 is not ASCII, "lower" keeps it
    ("E\u0301COLE", ("lower", "nfc"), "\u00e9cole"),  # lower first: e + combining acute composes to \u00e9
    ("\u212a", ("nfc", "lower"), "k"),  # KELVIN SIGN: NFC maps it to K
    ("W\u030a", ("nfc", "lower"), "w\u030a"),  # no capital W with ring exists to compose to
    ("W\u030a", ("lower", "nfc"), "\u1e98"),
    ("\u0130\u03a3\u00c4", ("lower",), "\u0130\u03a3\u00c4"),  # non-ASCII capitals stay
    ("a\u0302\u0323", ("nfc",), "\u1ead"),  # marks reordered by combining class, then composed
    ("ABC", (), "ABC"),
]


@pytest.mark.parametrize("text, steps, expected", NORMALIZED)
def test_normalize_steps(text, steps, expected):
    assert normalize_text(text, steps) == expected


@pytest.mark.parametrize("steps, message", [
    ("lower", "normalize must be a list of steps"), (["upper"], "unknown normalize step 'upper': use nfc, lower"),
    (["lower", "lower"], "normalize step 'lower' is listed twice"), ([1], "normalize must be a list of steps"),
])
def test_bad_normalize_steps(steps, message):
    with pytest.raises(VocabError, match=message):
        check_normalize(steps)


def test_pipeline_normalizes_sources_only_and_records_its_steps():
    src = Vocab.build(["abc"], "char")
    text = TextPipeline(src, Vocab.build(["A B"], "space"), normalize=("nfc", "lower"))
    assert text.encode_source("ABC") == text.encode_source("abc") == src.encode("abc")
    assert text.encode_source("ABC", normalized=True) == [UNK_ID] * 3
    assert text.encode_target("A B") != text.encode_target("a b")  # targets are never normalized
    assert TextPipeline.from_dict(text.to_dict()) == text and text.to_dict()["normalize"] == ["nfc", "lower"]
    plain = TextPipeline(src, text.tgt)
    assert "normalize" not in plain.to_dict() and TextPipeline.from_dict(plain.to_dict()).normalize == ()
    assert text.unknown_source("abxzb") == ("x", "z")
