#!/usr/bin/env python3
"""Writes the crafted files of tests/corpus (see README.md): images, archives and checkpoints that lie about
their sizes, end early or hold null, negative and overflowing fields. Deterministic: running it again
rewrites the same bytes. Standard library only. Usage: python3 tests/corpus/generate.py
"""
import base64
import gzip
import hashlib
import io
import json
import os
import random
import struct
import tarfile
import zlib

ROOT = os.path.dirname(os.path.abspath(__file__))

# A 16x16 baseline JPEG (SkiaSharp, quality 90), the base of the crafted JPEGs.
JPEG_16 = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8X"
    "GBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAAR"
    "CAAQABADASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAABwj/xAAlEAABAwIFBAMAAAAAAAAAAAABAgMREiEABgcxQQQiUZEUI3H/xAAV"
    "AQEBAAAAAAAAAAAAAAAAAAACBP/EACARAAEEAQQDAAAAAAAAAAAAAAECAxEhBgAFEiIHQaH/2gAMAwEAAhEDEQA/AJSyjpYSGK+lktwk0mog"
    "cQU23UI594a8q6UtrprZKKO8JS2UQRfnYkbRbiTvhiyhpIovNNK6QfGQLGT4jf344/MMuW9LVBtCy39qmjUumqbQe3YXESDHnFu7ZcpplwuK"
    "kCrFnjAN9AfUEjiYUrrQJ8b57Jbhf3X/2Q==")


def write(relative, data):
    path = os.path.join(ROOT, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- images

def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(width, height, pixels=None):
    """An 8-bit RGB PNG of the given size; its IDAT holds `pixels` rows (a tiny valid stream when None)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(pixels, 9) if pixels is not None else zlib.compress(b"\0\0\0\0", 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def noise_png(width, height, seed):
    rng = random.Random(seed)
    rows = b"".join(b"\0" + bytes(rng.randrange(256) for _ in range(3 * width)) for _ in range(height))
    return png(width, height, rows)


def jpeg_with_size(width, height):
    """The base JPEG with its SOF0 frame header claiming width x height."""
    data = bytearray(JPEG_16)
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def images():
    write("images/png-32768x32769-overflows-int.png", png(32768, 32769))
    write("images/png-100000x100000-side-too-long.png", png(100000, 100000))
    write("images/png-16384x8192-too-many-pixels.png", png(16384, 8192))
    write("images/jpeg-65500x65500-side-too-long.jpg", jpeg_with_size(65500, 65500))
    write("images/jpeg-65500x1024-side-too-long.jpg", jpeg_with_size(65500, 1024))
    full = noise_png(64, 64, seed=1)
    write("images/png-truncated.png", full[: len(full) // 2])
    scan = JPEG_16.index(b"\xff\xda")  # cut halfway through the entropy-coded scan, after every header
    write("images/jpeg-truncated.jpg", JPEG_16[: scan + (len(JPEG_16) - scan) // 2])
    write("images/png-header-only.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)))
    write("images/empty.png", b"")
    write("images/text-named.jpg", b"this is not an image, whatever its name says\n")


# ---------------------------------------------------------------- archives

def tar_header(name, typeflag, size=0, base256=False, negative=False):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    if base256:
        field = (size if not negative else (1 << 88) - size).to_bytes(11, "big")
        h[124:136] = (b"\x80" if not negative else b"\xff") + field
    else:
        h[124:136] = ("%011o" % size).encode() + b"\0"
    h[136:148] = b"00000000000\0"
    h[148:156] = b" " * 8
    h[156] = ord(typeflag)
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = ("%06o" % sum(h)).encode() + b"\0 "
    return bytes(h)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def tar_of(files):
    """A POSIX tar (no timestamps, no owners) of (path, bytes) files and their folders."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders = set()
        for path, _ in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folders.add("/".join(parts[:i]))
        for folder in sorted(folders):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, data in files:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def archives():
    end = b"\0" * 1024
    write("archives/entry-claims-3gib.tar.gz", gz(tar_header("train/a/x.png", "0", 3 << 30) + end))
    write("archives/entry-claims-2pow62-base256.tar.gz", gz(tar_header("train/a/x.png", "0", 1 << 62, base256=True) + end))
    write("archives/entry-negative-size.tar.gz", gz(tar_header("train/a/x.png", "0", 5, base256=True, negative=True) + end))
    write("archives/pax-header-claims-1536mib.tar.gz", gz(tar_header("PaxHeaders/x.png", "x", 1536 << 20) + end))
    write("archives/pax-header-claims-3gib.tar.gz", gz(tar_header("PaxHeaders/x.png", "x", 3 << 30) + end))
    write("archives/gnu-long-name-claims-2gib.tar.gz", gz(tar_header("././@LongLink", "L", (1 << 31) - 1) + end))
    rng = random.Random(5)
    write("archives/garbage-header.tar.gz", gz(bytes(rng.randrange(256) for _ in range(512)) + end))
    write("archives/not-gzip.tar.gz", b"this is not a gzip stream\n")
    good = noise_png(8, 6, seed=2)
    whole = tar_of([("train/a/ok.png", good), ("test/a/ok.png", good)])
    second = whole.index(good, whole.index(good) + 1)
    write("archives/truncated.tar.gz", gz(whole[: second + 10]))  # ends 10 bytes into test/a/ok.png
    write("archives/hostile-images.tar.gz", gz(tar_of([
        ("train/a/ok.png", good),
        ("train/a/overflows-int.png", png(32768, 32769)),
        ("train/a/truncated.png", noise_png(64, 64, seed=1)[:200]),
        ("train/a/empty.png", b""),
        ("test/a/ok.png", good),
        ("test/a/too-many-pixels.png", png(16384, 8192)),
    ])))


# ---------------------------------------------------------------- checkpoints

MAGIC = b"MOCOCKPT"


def checkpoint(document, data=b"", header_length=None, text=None):
    """A checkpoint whose prefix check and SHA-256 trailer are valid, so a reader gets as far as its header."""
    header = text.encode() if text is not None else json.dumps(document, separators=(",", ":")).encode()
    declared = 32 + len(header) + len(data) + 32
    fields = struct.pack("<IIq", 1, len(header) if header_length is None else header_length, declared)
    check = hashlib.sha256(MAGIC + fields).digest()[:8]
    body = MAGIC + fields + check + header + data
    return body + hashlib.sha256(body).digest()


def document(tensors, **overrides):
    doc = {"RunId": "corpus-run", "Epoch": 1, "Step": 10, "CreatedUtc": "2025-01-02T03:04:05+00:00",
           "ConfigJson": "{}", "Extra": {"seed": "42"}, "Tensors": tensors}
    doc.update(overrides)
    return doc


def tensor(name, shape, offset=0, length=None, dtype="float32"):
    size = {"float32": 4, "float64": 8, "bfloat16": 2, "int64": 8, "int32": 4, "uint8": 1, "bool": 1}.get(dtype, 4)
    if length is None:
        length = size
        for d in shape:
            length *= d
    return {"Name": name, "DType": dtype, "Shape": shape, "Offset": offset, "Length": length}


def checkpoints():
    w = tensor("w", [4])
    data = struct.pack("<4f", 1, 2, 3, 4)
    write("checkpoints/valid.mocockpt", checkpoint(document([w]), data))
    write("checkpoints/null-tensor-entry.mocockpt", checkpoint(document([None]), b""))
    write("checkpoints/null-tensor-index.mocockpt", checkpoint(document(None), b""))
    write("checkpoints/null-tensor-name.mocockpt", checkpoint(document([dict(w, Name=None)]), data))
    write("checkpoints/null-dtype.mocockpt", checkpoint(document([dict(w, DType=None)]), data))
    write("checkpoints/null-shape.mocockpt", checkpoint(document([dict(w, Shape=None)]), data))
    write("checkpoints/null-run-id.mocockpt", checkpoint(document([w], RunId=None), data))
    write("checkpoints/null-extra-value.mocockpt", checkpoint(document([w], Extra={"seed": None}), data))
    write("checkpoints/null-document.mocockpt", checkpoint(None, b"", text="null"))
    write("checkpoints/not-json.mocockpt", checkpoint(None, b"", text="{\"RunId\": \"corpus-run\", "))
    write("checkpoints/negative-epoch.mocockpt", checkpoint(document([w], Epoch=-1), data))
    write("checkpoints/negative-step.mocockpt", checkpoint(document([w], Step=-5), data))
    write("checkpoints/negative-dimension.mocockpt", checkpoint(document([tensor("w", [-1, 4], length=16)]), data))
    write("checkpoints/negative-offset.mocockpt", checkpoint(document([tensor("w", [4], offset=-16)]), data))
    write("checkpoints/shape-overflows-long.mocockpt",
          checkpoint(document([tensor("w", [1 << 32, 1 << 32, 2], length=16)]), data))
    write("checkpoints/length-overflows-long.mocockpt", checkpoint(document([tensor("w", [1 << 61], length=16)]), data))
    write("checkpoints/tensor-beyond-file.mocockpt", checkpoint(document([tensor("w", [1024])]), data))
    # four tensors of 2^62 bytes whose offsets wrap around 2^64 back to 0, then the real 16 bytes: the lengths add up
    # to the data section only in wrapping 64-bit arithmetic
    quarter = 1 << 62
    offsets = [0, quarter, -(1 << 63), -quarter]
    wrapping = [tensor("huge%d" % i, [quarter], offset=o, dtype="uint8") for i, o in enumerate(offsets)]
    write("checkpoints/lengths-wrap-around.mocockpt", checkpoint(document(wrapping + [tensor("w", [4])]), data))
    write("checkpoints/unknown-dtype.mocockpt", checkpoint(document([dict(w, DType="complex128")]), data))
    write("checkpoints/duplicate-names.mocockpt",
          checkpoint(document([tensor("w", [2]), tensor("w", [2], offset=8)]), data))
    write("checkpoints/too-many-dimensions.mocockpt", checkpoint(document([tensor("w", [1] * 200 + [4])]), data))
    write("checkpoints/header-length-4gib.mocockpt", checkpoint(document([w]), data, header_length=0xFFFFFFFF))
    deep = "[" * 200 + "]" * 200
    write("checkpoints/deeply-nested-json.mocockpt",
          checkpoint(None, b"", text="{\"RunId\":\"corpus-run\",\"Epoch\":1,\"Step\":1,\"Unknown\":" + deep + "}"))


if __name__ == "__main__":
    images()
    archives()
    checkpoints()
