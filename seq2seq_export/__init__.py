"""seq2seq-export: train a GRU encoder/decoder, export it to TorchScript and ONNX, drive and verify it."""

__version__ = "0.1.0"
