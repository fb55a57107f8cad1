"""rnnkit.text: strings to tokens to ids and back (tokenizers, sentence splitting, Vocab).

Strings only; nothing here imports numpy or torch.
"""

from .sentences import split_sentences
from .tokenize import (
    BOS,
    EOS,
    SPECIALS,
    UNK,
    CharTokenizer,
    WordTokenizer,
    detokenize_words,
    is_abbreviation,
    make_tokenizer,
)
from .vocab import Vocab

__all__ = [
    "BOS", "EOS", "SPECIALS", "UNK", "CharTokenizer", "Vocab", "WordTokenizer",
    "detokenize_words", "is_abbreviation", "make_tokenizer", "split_sentences",
]
