"""Offline data: a cache with atomic writes, bundled datasets and generators."""

from xentlab.data.cache import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    cache_dir,
    cached_arrays,
    code_key,
    sha256_file,
    source_digest,
)
from xentlab.data.digits import Split, load_digits_split

__all__ = [
    "Split",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "cache_dir",
    "cached_arrays",
    "code_key",
    "load_digits_split",
    "sha256_file",
    "source_digest",
]
