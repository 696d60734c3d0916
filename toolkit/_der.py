"""The few DER encodings airseal builds by hand (X.690).

The TSA assembles its tokens from pre-encoded parts, the signing client
builds RFC 3161 requests, and the CA writes Fulcio's UTF8String extensions;
asn1crypto or cryptography would do each of these too, at many times the
cost on paths that run thousands of times a second. Every function here
gives the canonical (shortest) DER form. Pure and dependency-free, so the
verifier may use it as well.
"""

from __future__ import annotations

__all__ = ["integer", "integer_content", "length", "oid_content", "tlv", "utf8string"]


def length(n: int) -> bytes:
    """DER length octets (shortest form)."""
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: ``tag``, length, ``content``."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    return bytes((tag,)) + length(n) + content


def integer_content(value: int) -> bytes:
    """Minimal two's-complement content octets of an INTEGER."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)


def integer(value: int) -> bytes:
    """A DER INTEGER."""
    return tlv(0x02, integer_content(value))


def utf8string(text: str) -> bytes:
    """A DER UTF8String."""
    return tlv(0x0C, text.encode("utf-8"))


def oid_content(dotted: str) -> bytes:
    """DER content octets of a dotted OBJECT IDENTIFIER.

    Raises:
        ValueError: Not a valid dotted OID (at least two arcs, no leading
            zeros, first arc 0-2, second arc below 40 under 0 and 1).
    """
    parts = dotted.split(".")
    if len(parts) < 2 or not all(p.isdigit() and (p == "0" or p[0] != "0") for p in parts):
        raise ValueError(f"not a dotted OID: {dotted!r}")
    arcs = [int(p) for p in parts]
    if arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"not a valid OID: {dotted!r}")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out.extend(reversed(chunk))
    return bytes(out)
