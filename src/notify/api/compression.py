"""gzip for connect-python that stops at a size and a ratio, so a gzip bomb costs nothing.

connect-python 0.9.0 decompresses a request (a unary body, or each compressed
envelope of a stream or gRPC call) with ``gzip.decompress`` and checks
``read_max_bytes`` only afterwards: 0.5 MB of zeros grows the process by 1 GB
first. It takes its compressions as a constructor argument (``compressions=``),
which is the right level to hook: it already knows which body or envelope is
compressed, for every protocol. This one inflates in bounded steps
(``zlib.decompressobj`` with ``max_length``) and stops with RESOURCE_EXHAUSTED
once the output passes ``max_bytes``, or passes ``max_ratio`` times the input
(beyond a small floor, so tiny messages are never refused for compressing well).
Input that is not gzip is INVALID_ARGUMENT, never a 500 with zlib's message.
"""

from __future__ import annotations

import zlib

from connectrpc.code import Code
from connectrpc.compression.gzip import GzipCompression
from connectrpc.errors import ConnectError

_STEP = 64 * 1024
# Below this much output the ratio is not checked: a 20-byte gzip of a 10 KB
# run of spaces is legitimate and harmless.
RATIO_FLOOR = 1024 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class BoundedGzip:
    """A connect-python Compression named ``gzip`` with a decompressed-size cap."""

    def __init__(self, max_bytes: int, max_ratio: int) -> None:
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self._gzip = GzipCompression()

    def name(self) -> str:
        return "gzip"

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._gzip.compress(data)

    def decompress(self, data: bytes | bytearray | memoryview) -> bytes:
        limit = min(self._max_bytes, max(RATIO_FLOOR, len(data) * self._max_ratio))
        out = bytearray()
        pending = bytes(data)
        try:
            while pending:  # one iteration per gzip member (RFC 1952 allows several)
                inflater = zlib.decompressobj(_GZIP_WBITS)
                chunk = inflater.decompress(pending, _STEP)
                while True:
                    out += chunk
                    if len(out) > limit:
                        raise ConnectError(Code.RESOURCE_EXHAUSTED, self._too_big(limit))
                    if inflater.eof:
                        break
                    if not chunk and not inflater.unconsumed_tail:
                        raise ConnectError(Code.INVALID_ARGUMENT, "gzip body is truncated")
                    chunk = inflater.decompress(inflater.unconsumed_tail, _STEP)
                pending = inflater.unused_data
        except zlib.error:
            raise ConnectError(Code.INVALID_ARGUMENT, "body is not valid gzip") from None
        return bytes(out)

    def _too_big(self, limit: int) -> str:
        if limit < self._max_bytes:
            return f"gzip body inflates more than {self._max_ratio} times its size"
        return f"message is larger than configured max {self._max_bytes} once decompressed"
