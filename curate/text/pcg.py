"""numpy's default_rng(seed).integers(low, high, n, dtype=np.uint64), in plain Python.

MinHash's permutation parameters come from that call; importing numpy.random for 2 x 128
numbers costs ~10 ms per process, a few percent of a small run. Same algorithms as numpy:
SeedSequence (entropy pool of 4 words, hashmix), PCG64 (XSL-RR 128/64) and Lemire's bounded
integers; tests compare the output with numpy's for many sizes.
"""

from __future__ import annotations

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
M128 = (1 << 128) - 1
INIT_A, MULT_A, INIT_B, MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R = 0xCA01F9DD, 0x4973F715
PCG_MULT = (2549297995355413924 << 64) | 4865540595714422341


def _seed_words(seed: int, n_words: int) -> list[int]:
    """SeedSequence(seed).generate_state(n_words, np.uint32)."""
    entropy = []
    while True:  # the seed as little-endian 32-bit words
        entropy.append(seed & M32)
        seed >>= 32
        if not seed:
            break
    h = [INIT_A]

    def hashmix(v: int) -> int:
        v = (v ^ h[0]) & M32
        h[0] = (h[0] * MULT_A) & M32
        v = (v * h[0]) & M32
        return v ^ (v >> 16)

    def mix(x: int, y: int) -> int:
        r = (MIX_MULT_L * x - MIX_MULT_R * y) & M32
        return r ^ (r >> 16)

    pool = [hashmix(entropy[i] if i < len(entropy) else 0) for i in range(4)]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(4, len(entropy)):
        for dst in range(4):
            pool[dst] = mix(pool[dst], hashmix(entropy[src]))
    out, hc = [], INIT_B
    for i in range(n_words):
        v = pool[i % 4] ^ hc
        hc = (hc * MULT_B) & M32
        v = (v * hc) & M32
        out.append(v ^ (v >> 16))
    return out


class PCG64:
    def __init__(self, seed: int):
        w = _seed_words(seed, 8)
        v = [w[2 * i] | (w[2 * i + 1] << 32) for i in range(4)]  # generate_state(4, np.uint64)
        self.inc = ((((v[2] << 64) | v[3]) << 1) | 1) & M128
        self.state = 0
        self._step()
        self.state = (self.state + ((v[0] << 64) | v[1])) & M128
        self._step()

    def _step(self) -> None:
        self.state = (self.state * PCG_MULT + self.inc) & M128

    def next64(self) -> int:
        self._step()
        s = self.state
        x, rot = ((s >> 64) ^ s) & M64, s >> 122
        return ((x >> rot) | (x << (64 - rot))) & M64

    def integers(self, low: int, high: int, n: int) -> list[int]:
        """Generator.integers(low, high, n, dtype=np.uint64) for high - low > 2^32."""
        rng = high - 1 - low
        assert M32 < rng < M64, "only the 64-bit Lemire path is implemented"
        excl = rng + 1
        out = []
        for _ in range(n):
            m = self.next64() * excl
            if (m & M64) < excl:
                threshold = (M64 - rng) % excl
                while (m & M64) < threshold:
                    m = self.next64() * excl
            out.append(low + (m >> 64))
        return out
