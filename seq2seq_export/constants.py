"""Every constant the stages share, in one place."""

# Special tokens and the ids our own vocabularies give them. Imported (seed) vocabularies may
# place them elsewhere; the ids actually used travel with each vocabulary.
PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, SOS, EOS)
PAD_ID, UNK_ID, SOS_ID, EOS_ID = 0, 1, 2, 3

TOKENIZERS = ("char", "space")  # char: one token per character; space: whitespace-separated

CHECKPOINT_FORMAT_VERSION = 1
MANIFEST_FORMAT_VERSION = 1
SUPPORTED_MANIFEST_VERSIONS = (1,)

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

# Extra decoding steps allowed beyond the longest target seen in training, when a bundle's
# max_len default is derived from data.
MAX_LEN_MARGIN = 10
DEFAULT_MAX_LEN = 50

DEFAULT_ARTIFACTS_DIR = "artifacts"
DEFAULT_PRESET = "cmudict"
