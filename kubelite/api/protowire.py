"""Protocol buffer wire primitives: varints, field keys, length-delimited fields.

Two encoders share these: the Kubernetes object codec (``protobuf``) and the gnostic
OpenAPI v2 encoder (``apiserver.openapi.gnostic``).  Neither needs generated classes,
only the raw wire format, so the primitives live here once, under public names.
"""
from __future__ import annotations

from collections.abc import Iterator

# Wire types.
VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5


class Malformed(ValueError):
    """The bytes are not a valid protobuf message for the expected schema."""


# --------------------------------------------------------------------------- reading

def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the varint at ``pos``."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise Malformed("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value): int for varints, bytes for the rest."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise Malformed("field number 0")
        value: int | bytes
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == FIXED64:
            if pos + 8 > end:
                raise Malformed("truncated fixed64")
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == FIXED32:
            if pos + 4 > end:
                raise Malformed("truncated fixed32")
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == LEN:
            size, pos = read_varint(buf, pos)
            if pos + size > end:
                raise Malformed("length-delimited field runs past the end of the message")
            value, pos = buf[pos:pos + size], pos + size
        else:  # groups are never used by Kubernetes
            raise Malformed(f"unsupported wire type {wire} for field {number}")
        yield number, wire, value


# --------------------------------------------------------------------------- writing

def varint(n: int) -> bytes:
    """The varint encoding of ``n``."""
    if n < 0:
        n += 1 << 64  # negative ints are 10-byte two's complement, as Go writes them
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    """A field key: the field number and wire type, as one varint."""
    return varint(number << 3 | wire)


def len_field(number: int, data: bytes) -> bytes:
    """A length-delimited field (strings, bytes, embedded messages)."""
    return key(number, LEN) + varint(len(data)) + data
