"""`python -m seq2seq_export COMMAND ...` runs the same commands as the s2s-* console scripts."""

from .cli import main

if __name__ == "__main__":
    main()
