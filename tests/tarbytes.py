"""Tar members written byte by byte, for headers no well-behaved writer would produce.

Field offsets are POSIX ustar's (pax is ustar plus extended headers); the checksum is the plain byte
sum with the checksum field read as spaces, as the standard defines it.
"""

from __future__ import annotations

import io

BLOCK = 512
POSIX_MAGIC = b"ustar\x0000"
OLD_GNU_MAGIC = b"ustar  \x00"


def header(
    name: bytes,
    size: int = 0,
    *,
    flag: bytes = b"0",
    size_field: bytes | None = None,
    link: bytes = b"",
    magic: bytes = POSIX_MAGIC,
    prefix: bytes = b"",
    at: dict[int, bytes] | None = None,
) -> bytes:
    """One 512-byte header. `size_field` replaces the octal size verbatim; `at` writes raw bytes at
    given offsets (old GNU fields, for instance) before the checksum is computed."""
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\x00"
    block[108:116] = b"0000000\x00"
    block[116:124] = b"0000000\x00"
    block[124:136] = size_field if size_field is not None else b"%011o\x00" % size
    block[136:148] = b"00000000000\x00"
    block[156:157] = flag
    block[157 : 157 + len(link)] = link
    block[257:265] = magic
    block[345 : 345 + len(prefix)] = prefix
    for offset, raw in (at or {}).items():
        block[offset : offset + len(raw)] = raw
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def member(name: bytes, data: bytes = b"", **fields: object) -> bytes:
    return header(name, len(data), **fields) + padded(data)  # type: ignore[arg-type]


def pax_record(key: bytes, value: bytes) -> bytes:
    """ "LEN KEY=VALUE\\n", where LEN counts itself: grow it until it is stable."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(b"%d" % length) + len(body) != length:
        length = len(b"%d" % length) + len(body)
    return b"%d" % length + body


def pax_member(records: list[tuple[bytes, bytes]] | bytes, name: bytes = b"PaxHeaders/f", flag: bytes = b"x") -> bytes:
    data = records if isinstance(records, bytes) else b"".join(pax_record(k, v) for k, v in records)
    return member(name, data, flag=flag)


def end() -> bytes:
    return bytes(2 * BLOCK)


def base256(value: int, width: int = 12) -> bytes:
    """GNU's binary number: 0x80 then big-endian for positives; two's complement (0xff…) below 0."""
    if value >= 0:
        return b"\x80" + value.to_bytes(width - 1, "big")
    return value.to_bytes(width, "big", signed=True)


class NoSeek(io.RawIOBase):
    """A stream that refuses to seek, like a decompressor."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(n)
