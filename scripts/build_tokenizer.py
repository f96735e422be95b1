"""Regenerate `otterbench/data/tokenizer.json`: a byte-level BPE trained on the project's own corpus.

Run from the repository root: `.venv/bin/python scripts/build_tokenizer.py`. Training is deterministic for
a fixed corpus and `tokenizers` release, so rerunning it should leave the file unchanged (the script says
whether it did).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

DATA_DIR = Path(__file__).resolve().parents[1] / "otterbench" / "data"
# ids 0, 1, 2 in this order: the tiny model configs (`make_config`) assume pad 0, bos 1, eos 2
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>"]
VOCAB_SIZE = 4096


def train_tokenizer(corpus_path: Path, vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    """Train a byte-level BPE of `vocab_size` tokens on the lines of `corpus_path`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = corpus_path.read_text(encoding="utf-8").splitlines()
    tokenizer.train_from_iterator(lines, trainer=trainer)
    # every encoded text starts with <s>, as Llama tokenizers do
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return tokenizer


def main() -> None:
    """Train the tokenizer and write it next to the corpus."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DATA_DIR / "corpus.txt")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "tokenizer.json")
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    args = parser.parse_args()

    tokenizer = train_tokenizer(args.corpus, args.vocab_size)
    ids = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
    if ids != [0, 1, 2]:
        raise SystemExit(f"special tokens got ids {ids}; expected [0, 1, 2]")
    if tokenizer.get_vocab_size() != args.vocab_size:
        raise SystemExit(
            f"the corpus supports only {tokenizer.get_vocab_size()} tokens, not --vocab-size "
            f"{args.vocab_size}: add text to {args.corpus} or lower --vocab-size"
        )
    before = args.out.read_bytes() if args.out.exists() else b""
    tokenizer.save(str(args.out), pretty=False)
    after = args.out.read_bytes()
    status = "unchanged" if before == after else "written"
    digest = hashlib.sha256(after).hexdigest()[:12]
    print(f"{args.out}: {status}, vocab {tokenizer.get_vocab_size()}, {len(after)} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
