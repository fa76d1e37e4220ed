"""BLAKE3 (keyed hash and key derivation) in pure Python, for the anonymize
example: Python's standard library has no BLAKE3, and the plugin must make the
same pseudonyms as the Rust one. Written from the BLAKE3 specification."""

__all__ = ["keyed_hash", "derive_key"]

_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_PERM = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
CHUNK_START, CHUNK_END, PARENT, ROOT = 1, 2, 4, 8
KEYED_HASH, DERIVE_KEY_CONTEXT, DERIVE_KEY_MATERIAL = 16, 32, 64
_M = 0xFFFFFFFF


def _schedule():
    """The message word order of each of the 7 rounds."""
    order, rounds = list(range(16)), []
    for _ in range(7):
        rounds.append(tuple(order))
        order = [order[p] for p in _PERM]
    return tuple(rounds)


_ROUNDS = _schedule()


def _compress(cv, m, counter, block_len, flags):
    """The compression function: 16 output words."""
    v = [*cv, *_IV[:4], counter & _M, (counter >> 32) & _M, block_len, flags]
    for s in _ROUNDS:
        for a, b, c, d, x, y in (
            (0, 4, 8, 12, s[0], s[1]), (1, 5, 9, 13, s[2], s[3]),
            (2, 6, 10, 14, s[4], s[5]), (3, 7, 11, 15, s[6], s[7]),
            (0, 5, 10, 15, s[8], s[9]), (1, 6, 11, 12, s[10], s[11]),
            (2, 7, 8, 13, s[12], s[13]), (3, 4, 9, 14, s[14], s[15]),
        ):
            va, vb, vc, vd = v[a], v[b], v[c], v[d]
            va = (va + vb + m[x]) & _M
            vd ^= va
            vd = ((vd >> 16) | (vd << 16)) & _M
            vc = (vc + vd) & _M
            vb ^= vc
            vb = ((vb >> 12) | (vb << 20)) & _M
            va = (va + vb + m[y]) & _M
            vd ^= va
            vd = ((vd >> 8) | (vd << 24)) & _M
            vc = (vc + vd) & _M
            vb ^= vc
            vb = ((vb >> 7) | (vb << 25)) & _M
            v[a], v[b], v[c], v[d] = va, vb, vc, vd
    return [v[i] ^ v[i + 8] for i in range(8)] + [v[i + 8] ^ cv[i] for i in range(8)]


def _words(block):
    block = block.ljust(64, b"\0")
    return [int.from_bytes(block[i : i + 4], "little") for i in range(0, 64, 4)]


def _chunk(key, chunk, counter, flags, root):
    """The chaining value of one chunk (of at most 1024 bytes), with ROOT on its last block if `root`."""
    cv = list(key)
    blocks = [chunk[i : i + 64] for i in range(0, len(chunk), 64)] or [b""]
    for i, block in enumerate(blocks):
        f = flags | (CHUNK_START if i == 0 else 0)
        if i == len(blocks) - 1:
            f |= CHUNK_END | (ROOT if root else 0)
        cv = _compress(cv, _words(block), counter, len(block), f)[:8]
    return cv


def _hash(key, data, flags):
    chunks = [data[i : i + 1024] for i in range(0, len(data), 1024)] or [b""]
    if len(chunks) == 1:
        cv = _chunk(key, chunks[0], 0, flags, True)
    else:
        # Chunk chaining values merged into a binary tree: left subtrees are
        # the largest powers of two of chunks, as the specification lays out.
        stack = []
        for n, chunk in enumerate(chunks[:-1]):
            cv = _chunk(key, chunk, n, flags, False)
            total = n + 1
            while total & 1 == 0:
                cv = _compress(key, stack.pop() + cv, 0, 64, flags | PARENT)[:8]
                total >>= 1
            stack.append(cv)
        cv = _chunk(key, chunks[-1], len(chunks) - 1, flags, False)
        while stack:
            left = stack.pop()
            cv = _compress(key, left + cv, 0, 64, flags | PARENT | (ROOT if not stack else 0))[:8]
    return b"".join(w.to_bytes(4, "little") for w in cv)


def _key_words(key):
    return [int.from_bytes(key[i : i + 4], "little") for i in range(0, 32, 4)]


def keyed_hash(key, data):
    """BLAKE3 of `data` keyed with the 32-byte `key`: 32 bytes."""
    return _hash(_key_words(key), data, KEYED_HASH)


def derive_key(context, material):
    """BLAKE3's key derivation: a 32-byte key from a context string and key material."""
    context_key = _hash(_IV, context.encode("utf-8"), DERIVE_KEY_CONTEXT)
    return _hash(_key_words(context_key), material, DERIVE_KEY_MATERIAL)


def hash(data):
    """Plain BLAKE3 of `data` (for checking against published test vectors)."""
    return _hash(_IV, data, 0)
