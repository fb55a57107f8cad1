"""rnnkit.data: corpora in (files, known datasets), int64 batches out.

Dataset sources are "NAME" or "NAME:SPLIT" (e.g. "ptb:valid", "tinyshakespeare:valid",
"python-docs:all"); see rnnkit.data.readers and rnnkit.data.datasets.
"""

from .batching import StreamBatcher, encode_sentences, sentence_batches, sentence_order, stream_ids
from .datasets import (
    KNOWN_DATASETS,
    DatasetFile,
    DatasetSpec,
    download_dataset,
    python_docs_text,
    resolve_dataset,
)
from .readers import (
    MAX_LINE_CHARS,
    detect_format,
    parse_corpus,
    read_sentences,
    read_text,
    split_lines,
)

__all__ = [
    "KNOWN_DATASETS", "MAX_LINE_CHARS", "DatasetFile", "DatasetSpec", "StreamBatcher",
    "detect_format", "download_dataset", "encode_sentences", "parse_corpus", "python_docs_text",
    "read_sentences", "read_text", "resolve_dataset", "sentence_batches", "sentence_order",
    "split_lines", "stream_ids",
]
