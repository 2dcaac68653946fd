"""The qres reader against archives written here by a tiny independent writer (v1, v2, v3; stored and zlib)."""

import struct
import zlib

import pytest

from training.rcc import FLAG_COMPRESSED, FLAG_COMPRESSED_ZSTD, FLAG_DIRECTORY, RccArchive, RccError

FILES = {
    "images/fish/fish1.webp": b"RIFF....WEBPVP8 fake fish bytes" * 5,
    "images/fish/fish2.jpg": bytes(range(256)) * 3,
    "images/readme.txt": "héllo ünïcode".encode(),
    "top.qml": b"import QtQuick 2.0\n",
    "empty.bin": b"",
}


def write_qres(files: dict, version: int, compress: bool = False, zstd_paths=(), modified_ms: int = 1234567) -> bytes:
    """Lay the archive out like rcc does: breadth-first nodes, children of a directory contiguous."""
    tree = _tree(files)
    names, name_offsets = bytearray(), {}
    data = bytearray()
    nodes = []  # (name, is_dir, payload-or-children)
    queue = [("", tree)]
    order = [("", True, tree)]
    while queue:  # breadth-first numbering
        _, children = queue.pop(0)
        for name in sorted(children):
            child = children[name]
            order.append((name, isinstance(child, dict), child))
            if isinstance(child, dict):
                queue.append((name, child))
    first_child, next_index = {}, 1
    for index, (name, is_dir, child) in enumerate(order):
        if is_dir:
            first_child[index] = next_index
            next_index += len(child)
    node_size = 14 if version == 1 else 22
    for index, (name, is_dir, child) in enumerate(order):
        if name not in name_offsets:
            name_offsets[name] = len(names)
            encoded = name.encode("utf-16-be")
            names += struct.pack(">HI", len(encoded) // 2, zlib.crc32(encoded)) + encoded
        if is_dir:
            node = struct.pack(">IHII", name_offsets[name], FLAG_DIRECTORY, len(child), first_child[index])
        else:
            payload, flags = child[1], 0
            if child[0] in zstd_paths:
                flags = FLAG_COMPRESSED_ZSTD
            elif compress:
                payload, flags = struct.pack(">I", len(payload)) + zlib.compress(payload), FLAG_COMPRESSED
            node = struct.pack(">IHHHI", name_offsets[name], flags, 1, 2, len(data))
            data += struct.pack(">I", len(payload)) + payload
        if version >= 2:
            node += struct.pack(">Q", modified_ms)
        assert len(node) == node_size
        nodes.append(node)
    header_size = 24 if version >= 3 else 20
    tree_offset = header_size
    data_offset = tree_offset + node_size * len(nodes)
    names_offset = data_offset + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_offset, data_offset, names_offset)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + b"".join(nodes) + bytes(data) + bytes(names)


def _tree(files: dict) -> dict:
    root: dict = {}
    for path, payload in files.items():
        parts = path.split("/")
        folder = root
        for part in parts[:-1]:
            folder = folder.setdefault(part, {})
        folder[parts[-1]] = (path, payload)
    return root


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("compress", [False, True])
def test_reads_every_file_back(version, compress):
    archive = RccArchive(write_qres(FILES, version, compress))
    entries = {entry.path: entry for entry in archive.entries()}
    assert set(entries) == set(FILES)
    for path, payload in FILES.items():
        assert archive.read(entries[path]) == payload
        assert entries[path].compression == ("zlib" if compress else "none")
    assert archive.version == version


def test_modified_time_and_locale_are_reported():
    v2 = {e.path: e for e in RccArchive(write_qres(FILES, 2, modified_ms=42)).entries()}
    v1 = {e.path: e for e in RccArchive(write_qres(FILES, 1)).entries()}
    assert v2["top.qml"].last_modified_ms == 42
    assert v1["top.qml"].last_modified_ms == 0
    assert (v2["top.qml"].country, v2["top.qml"].language) == (1, 2)


def test_unicode_names_survive():
    archive = RccArchive(write_qres({"dossier/été.png": b"x"}, 2))
    assert [e.path for e in archive.entries()] == ["dossier/été.png"]


def test_bad_magic_is_a_clear_error():
    with pytest.raises(RccError, match="qres"):
        RccArchive(b"PK\x03\x04" + bytes(40))


def test_unknown_version_is_refused():
    blob = bytearray(write_qres(FILES, 2))
    blob[4:8] = struct.pack(">I", 9)
    with pytest.raises(RccError, match="version 9"):
        RccArchive(bytes(blob))


def test_truncated_archive_is_a_clear_error():
    blob = write_qres(FILES, 3, compress=True)
    with pytest.raises(RccError, match="truncated"):
        archive = RccArchive(blob[:60])
        for entry in archive.entries():
            archive.read(entry)


def test_corrupt_zlib_payload_is_reported():
    blob = bytearray(write_qres({"a.bin": b"abc" * 100}, 2, compress=True))
    archive = RccArchive(bytes(blob))
    entry = archive.entries()[0]
    start = archive.data_offset + entry.data_offset + 4 + 4  # size, uncompressed size, then zlib stream
    blob[start + 2:start + 6] = b"\xff\xff\xff\xff"
    with pytest.raises(RccError, match="a.bin"):
        RccArchive(bytes(blob)).read(entry)


def test_zstd_entries_are_read_or_explained():
    try:  # zstandard is optional: with it the entry decodes, without it the error names the package
        import zstandard
    except ImportError:
        zstandard = None
    payload = b"zstd payload " * 20
    stored = zstandard.ZstdCompressor().compress(payload) if zstandard else b"\x28\xb5\x2f\xfdnot really"
    archive = RccArchive(write_qres({"z.bin": stored}, 3, zstd_paths=("z.bin",)))
    entry = archive.entries()[0]
    assert entry.compression == "zstd"
    if zstandard:
        assert archive.read(entry) == payload
    else:
        with pytest.raises(RccError, match="zstandard"):
            archive.read(entry)
