"""Reader for Qt binary resource archives (`.rcc`, the "qres" format, versions 1-3).

Layout (all integers big-endian), written from the format description of Qt's rcc tool:

    header   "qres", version u32, tree offset u32, data offset u32, names offset u32, [v3: flags u32]
    tree     fixed-size nodes; node 0 is the root directory. Each node:
               name offset u32 (into the names block), flags u16,
               directory: child count u32, index of the first child node u32
               file:      country u16, language u16, data offset u32 (into the data block)
               v2+:       last modified u64 (ms since the epoch; 0 when unknown)
    names    at names offset + name offset: length u16 (UTF-16 units), hash u32, UTF-16BE text
    data     at data offset + data offset: size u32, then the bytes; zlib-compressed entries start
             with the uncompressed size as u32 (qCompress) followed by a zlib stream.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"qres"
FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_COMPRESSED_ZSTD = 0x04
_NODE_SIZE = {1: 14, 2: 22, 3: 22}


class RccError(ValueError):
    """The archive is not a readable qres file (bad magic, unsupported version, truncated, ...)."""


@dataclass(frozen=True)
class RccEntry:
    path: str               # "/"-separated, relative to the archive root, e.g. "gcompris/src/x.webp"
    flags: int
    country: int
    language: int
    data_offset: int        # relative to the data block
    last_modified_ms: int   # 0 for version 1 archives or when rcc did not record it

    @property
    def compression(self) -> str:
        if self.flags & FLAG_COMPRESSED_ZSTD:
            return "zstd"
        return "zlib" if self.flags & FLAG_COMPRESSED else "none"


class RccArchive:
    """An in-memory qres archive: `entries()` lists files, `read(entry)` returns their bytes."""

    def __init__(self, blob: bytes, name: str = "<rcc>"):
        self.name = name
        self._blob = blob
        self._parse_header()

    @classmethod
    def open(cls, path) -> RccArchive:
        return cls(Path(path).read_bytes(), name=str(path))

    def _parse_header(self) -> None:
        if self._blob[:4] != MAGIC:
            raise RccError(f"{self.name}: not a Qt resource archive (missing 'qres' magic)")
        self.version, self.tree_offset, self.data_offset, self.names_offset = self._unpack(">IIII", 4)
        if self.version not in _NODE_SIZE:
            raise RccError(f"{self.name}: unsupported qres format version {self.version} (known: 1-3)")
        self.format_flags = self._unpack(">I", 20)[0] if self.version >= 3 else 0
        self._node_size = _NODE_SIZE[self.version]

    def _unpack(self, fmt: str, offset: int) -> tuple:
        size = struct.calcsize(fmt)
        if offset < 0 or offset + size > len(self._blob):
            raise RccError(f"{self.name}: truncated archive (wanted {size} bytes at offset {offset})")
        return struct.unpack_from(fmt, self._blob, offset)

    def _name(self, name_offset: int) -> str:
        start = self.names_offset + name_offset
        (length,) = self._unpack(">H", start)
        text_start = start + 6  # skip the length and the u32 name hash
        raw = self._blob[text_start:text_start + 2 * length]
        if len(raw) != 2 * length:
            raise RccError(f"{self.name}: truncated name at offset {start}")
        return raw.decode("utf-16-be")

    def _node(self, index: int) -> tuple[int, int, int, int]:
        """(name offset, flags, a, b): a/b are child count/first child or locale/data offset."""
        offset = self.tree_offset + index * self._node_size
        name_offset, flags = self._unpack(">IH", offset)
        if flags & FLAG_DIRECTORY:
            count, first = self._unpack(">II", offset + 6)
            return name_offset, flags, count, first
        country, language, data_offset = self._unpack(">HHI", offset + 6)
        return name_offset, flags, (country << 16) | language, data_offset

    def _modified(self, index: int) -> int:
        if self.version < 2:
            return 0
        return self._unpack(">Q", self.tree_offset + index * self._node_size + 14)[0]

    def entries(self) -> list[RccEntry]:
        """Every file in the archive, depth first, in tree order."""
        found: list[RccEntry] = []
        # (node index, parent path, depth); the depth bound protects against cyclic trees.
        stack = [(0, "", 0)]
        while stack:
            index, parent, depth = stack.pop()
            name_offset, flags, a, b = self._node(index)
            if flags & FLAG_DIRECTORY:
                if depth > 64:
                    raise RccError(f"{self.name}: directory tree deeper than 64 levels (corrupt?)")
                path = parent if index == 0 else _join(parent, self._name(name_offset))
                stack.extend((child, path, depth + 1) for child in reversed(range(b, b + a)))
                continue
            found.append(RccEntry(_join(parent, self._name(name_offset)), flags, a >> 16, a & 0xFFFF, b,
                                  self._modified(index)))
        return found

    def read(self, entry: RccEntry) -> bytes:
        start = self.data_offset + entry.data_offset
        (size,) = self._unpack(">I", start)
        payload = self._blob[start + 4:start + 4 + size]
        if len(payload) != size:
            raise RccError(f"{self.name}: truncated data for {entry.path}")
        if entry.compression == "zlib":
            return _qt_uncompress(payload, f"{self.name}:{entry.path}")
        if entry.compression == "zstd":
            return _zstd_uncompress(payload, f"{self.name}:{entry.path}")
        return payload


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _qt_uncompress(payload: bytes, where: str) -> bytes:
    if len(payload) < 4:
        raise RccError(f"{where}: compressed entry shorter than its size prefix")
    (expected,) = struct.unpack_from(">I", payload, 0)
    try:
        data = zlib.decompress(payload[4:])
    except zlib.error as exc:
        raise RccError(f"{where}: corrupt zlib data ({exc})") from None
    if len(data) != expected:
        raise RccError(f"{where}: uncompressed size {len(data)} != recorded {expected}")
    return data


def _zstd_uncompress(payload: bytes, where: str) -> bytes:
    try:
        import zstandard  # optional: only Qt >= 5.13 archives built with zstd need it
    except ImportError:
        raise RccError(f"{where}: entry is zstd-compressed; install the 'zstandard' package to read it") from None
    try:
        return zstandard.ZstdDecompressor().decompress(payload, max_output_size=1 << 30)
    except zstandard.ZstdError as exc:
        raise RccError(f"{where}: corrupt zstd data ({exc})") from None


def main(argv=None) -> int:
    """`python -m training.rcc FILE.rcc`: list the archive (a debugging aid)."""
    import sys
    argv = sys.argv[1:] if argv is None else argv
    for path in argv:
        try:
            archive = RccArchive.open(path)
            for entry in archive.entries():
                print(f"{entry.compression:5} {entry.path}")
        except (OSError, RccError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
