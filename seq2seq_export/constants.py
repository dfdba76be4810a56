"""Every constant the stages share, in one place."""

# Special tokens and the ids our own vocabularies give them. Imported (seed) vocabularies may
# place them elsewhere; the ids actually used travel with each vocabulary.
PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, SOS, EOS)
PAD_ID, UNK_ID, SOS_ID, EOS_ID = 0, 1, 2, 3

TOKENIZERS = ("char", "space")  # char: one token per character; space: whitespace-separated
# Source normalization steps (vocab.normalize_text), applied in the order a text pipeline lists them:
# nfc = Unicode NFC; lower = ASCII A-Z to a-z only (the one lower-casing Python, JS and C++ share exactly).
NORMALIZE_STEPS = ("nfc", "lower")

# Closed sets the library checks and the CLI offers as choices, each spelled once.
FORMATS = ("onnx", "torchscript")  # graph formats a bundle may carry
BACKENDS = ("eager", "torchscript", "onnx")  # the reference first, then the exported formats
DEVICES = ("auto", "cpu", "cuda")  # auto: CUDA when torch sees it, else CPU
BULK_ENGINES = ("local", "ray")  # s2s-bulk: in this process, or Ray Data (the ray extra)
EXPORTERS = ("dynamo", "legacy")  # ONNX exporters: torch.export-based, TorchScript-based
DEFAULT_EXPORTER = "dynamo"
LR_SCHEDULES = ("constant", "cosine")
CLOCKS = ("wall", "cpu")  # what a training time budget counts

CHECKPOINT_FORMAT_VERSION = 1
# Manifest format 2 (this version writes it): memory required, decoding.max_src_tokens, roles, and a
# JSON Schema (manifest.schema.json) that every reader validates against. Format-1 bundles still load.
MANIFEST_FORMAT_VERSION = 2
SUPPORTED_MANIFEST_VERSIONS = (1, 2)
MANIFEST_SCHEMA_FILE = "manifest.schema.json"  # inside the package; drivers read the same file

# Hard ceilings on what a bundle, checkpoint or input may ask for, checked before anything is
# allocated or parsed. Each is far above any real model of this kind and far below what exhausts
# a machine. The manifest schema repeats the manifest ones (a test keeps them equal).
MAX_MANIFEST_BYTES = 16 << 20  # a 100k-token vocabulary is ~2 MB of manifest
MAX_LEN_CEILING = 4096  # decoding steps per sequence
MAX_BEAM_SIZE = 4096  # hypotheses kept per sequence while searching: a batch decodes batch x beam rows
MAX_LENGTH_PENALTY = 10.0  # length ** penalty stays finite for every length up to MAX_LEN_CEILING
MAX_SRC_TOKENS_CEILING = 4096  # tokens per input, as the model sees them
# An input cap for bundles that do not record one (format 1, imported models): generous for
# words and sentences, small enough that one batch's encoder memory stays in the tens of MB.
DEFAULT_MAX_SRC_TOKENS = 1024
MAX_VOCAB_SIZE = 1 << 20
MAX_MODEL_DIM = 16384  # emb_dim, hidden_dim, encoder_hidden_dim
MAX_LAYERS = 64
MAX_PARAMETERS = 2_000_000_000  # refused before allocation: 8 GB of float32 weights
# Compute threads for any backend: far above the cores of one machine; at 5000, onnxruntime's
# thread pool took minutes to start and stop.
MAX_THREADS = 256
# Characters of one input line held in memory: a line past this is read in pieces, counted and
# dropped (refused, or cut with --truncate). Far above MAX_SRC_TOKENS_CEILING words of any language.
MAX_LINE_CHARS = 1 << 20

# Fixed file names inside a bundle, so drivers in any language find the graphs without search.
MANIFEST_FILE = "manifest.json"
ENCODER_ONNX = "encoder.onnx"
DECODER_ONNX = "decoder_step.onnx"
ENCODER_TS = "encoder.pt"
DECODER_TS = "decoder_step.pt"
REFERENCE_CHECKPOINT = "checkpoint.pt"

# 17 is the lowest opset whose GRU/LSTM definitions and LayerNormalization all runtimes we
# target (onnxruntime 1.18+, onnxruntime-web) implement; 18 is what the torch.export-based
# exporter emits natively, which avoids a version-conversion pass.
DEFAULT_OPSET = 18
MIN_OPSET = 17

# Absolute tolerance for exported-vs-eager comparisons (as Hugging Face Optimum's validator).
DEFAULT_ATOL = 1e-5
# Relative part of the verifier's tolerance (|a - b| <= atol + rtol * |eager|, numpy.allclose's rule):
# a trained model's logits reach |10|-|20|, where float32 rounding alone in a 384-512 wide output
# layer differs by ~1e-5 between runtimes; 1e-6 is about 8 float32 ulps of the value itself.
DEFAULT_RTOL = 1e-6
# The verifier's float64 budget: an exported output that misses atol + rtol against eager still
# passes when, over a whole check, it is within atol + this factor x eager's own distance from the
# same model run in float64 (both are float32 approximations of it). Measured on the trained cmudict
# preset: onnxruntime 2.6-3.2x eager's distance, TorchScript 1x; defects are 100x and more.
DEFAULT_EXACT_FACTOR = 8.0
# The verifier's and the benchmark's beam check: beam size and n-best compared (the k = 4), and
# how far a hypothesis' log-prob sum may differ from eager's, per token (with length penalty 1 the
# score is the mean log-prob per token, so this bounds the score itself). A token's log-prob moves by
# at most twice its step's logit difference, which the values checks hold near 1e-5.
VERIFY_BEAM_SIZE = 4
BEAM_SCORE_ATOL = 1e-4

# Extra decoding steps allowed beyond the longest target seen in training, when a bundle's
# max_len default is derived from data.
MAX_LEN_MARGIN = 10
DEFAULT_MAX_LEN = 50
# Sequences per backend call when translating: results never depend on it.
DEFAULT_BATCH_SIZE = 32

DEFAULT_ARTIFACTS_DIR = "artifacts"
DEFAULT_PRESET = "cmudict"
