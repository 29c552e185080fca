"""The per-tensor size limit: sizes in bytes and their text, and overriding the limit for a block."""

from __future__ import annotations

import numpy as np
import pytest

from cimc.ir.limits import DEFAULT_MAX_TENSOR_BYTES, format_size, max_tensor_bytes, oversize, parse_size, tensor_limit


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("1073741824", 1 << 30),
        ("512M", 512 << 20),
        ("4G", 4 << 30),
        ("4g", 4 << 30),
        ("1.5GiB", 3 << 29),
        ("64KB", 64 << 10),
    ],
)
def test_sizes_read_with_binary_units(text: str, nbytes: int) -> None:
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "0", "-1", "4X", "lots", "1e9", "G"])
def test_a_bad_size_is_a_value_error_quoting_it(text: str) -> None:
    with pytest.raises(ValueError, match="is not a"):
        parse_size(text)


def test_sizes_print_for_people() -> None:
    assert [format_size(n) for n in (96, 4 << 10, 3 << 29, 4 * 10**9)] == ["96 bytes", "4 KiB", "1.5 GiB", "3.73 GiB"]


def test_oversize_counts_exactly_past_int64() -> None:
    assert oversize([2**40, 2**40], np.float32) is not None  # np.prod would wrap around to 0
    assert oversize([16, 16], np.float32) is None
    message = oversize([10**9], np.float32)
    assert message is not None and "1000000000 float32" in message and "3.73 GiB" in message


def test_the_limit_is_overridden_within_a_block_only() -> None:
    assert max_tensor_bytes() == DEFAULT_MAX_TENSOR_BYTES
    with tensor_limit(1 << 10):
        assert oversize([512], np.float32) is not None
        with tensor_limit(None):
            assert max_tensor_bytes() == 1 << 10
    assert max_tensor_bytes() == DEFAULT_MAX_TENSOR_BYTES
    assert oversize([512], np.float32) is None
