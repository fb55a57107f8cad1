"""rnnkit.data: corpora in (files, directories, globs of shards, known datasets), ids and batches out.

Dataset sources are "NAME" or "NAME:SPLIT" (e.g. "ptb:valid", "tinyshakespeare:valid",
"python-docs:all"); see rnnkit.data.sources and rnnkit.data.datasets. Corpora are encoded once
into id files (rnnkit.data.encode, kept in the id cache: rnnkit.data.cache) and read back as
memory maps (rnnkit.data.idfile.EncodedIds).
"""

from .batching import (
    StreamBatcher,
    encode_sentences,
    padded_batches,
    sentence_batches,
    sentence_lengths,
    sentence_order,
    stream_ids,
)
from .datasets import (
    KNOWN_DATASETS,
    DatasetFile,
    DatasetSpec,
    download_dataset,
    python_docs_text,
    resolve_dataset,
)
from .encode import encode_corpus, encode_source, holdout_count
from .idfile import EncodedIds, count_ids
from .readers import MAX_LINE_CHARS, detect_format, parse_corpus, read_text, split_lines
from .sources import corpus_parts, iter_sentences, read_sentences

__all__ = [
    "KNOWN_DATASETS", "MAX_LINE_CHARS", "DatasetFile", "DatasetSpec", "EncodedIds", "StreamBatcher",
    "corpus_parts", "count_ids", "detect_format", "download_dataset", "encode_corpus", "encode_sentences",
    "encode_source", "holdout_count", "iter_sentences", "padded_batches", "parse_corpus", "python_docs_text",
    "read_sentences", "read_text", "resolve_dataset", "sentence_batches", "sentence_lengths", "sentence_order",
    "split_lines", "stream_ids",
]
