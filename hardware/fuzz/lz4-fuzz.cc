// Memory-safety fuzz of hardware/lz4.cc's block codec under AddressSanitizer
// and UBSan, where the JS tests (test/lz4.test.ts) can only see writes
// outside a range, not reads. Every buffer is malloc'd at its exact size, so
// one byte read or written past it aborts. Per round: a random input
// (random, zeros, half and half, short periods), compressed into exactly
// its block's length (and refused with one byte less), decoded back, then
// decoded again after truncation, bit flips or garbage, into a destination
// of the right or a random size: the result must be an error or exactly
// that size. Not part of the addon build. From the repository root:
//
//   g++ -std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
//     -I"$(dirname "$(dirname "$(command -v node)")")/include/node" hardware/fuzz/lz4-fuzz.cc -o /tmp/lz4-fuzz
//   /tmp/lz4-fuzz 1        # the seed; 200,000 rounds
#include "../lz4.cc"

#include <cstdio>
#include <cstdlib>
#include <random>

// The N-API entry points lz4.cc also defines are never called here; these
// stand in for Node's and common.cc's symbols so the harness links alone.
extern "C" {
napi_status napi_create_function(napi_env, const char*, size_t, napi_callback, void*, napi_value*) { abort(); }
napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t*, napi_value*, napi_value*, void**) { abort(); }
}
namespace raftlog {
bool GetBytes(napi_env, napi_value, uint8_t**, size_t*) { abort(); }
bool GetUint32(napi_value, napi_env, uint32_t*) { abort(); }
void SetNamed(napi_env, napi_value, const char*, napi_value) { abort(); }
napi_value ThrowType(napi_env, const char*) { abort(); }
napi_value MakeNumber(napi_env, double) { abort(); }
}  // namespace raftlog

using raftlog::CompressBlock;
using raftlog::DecompressBlock;

static uint8_t* Exact(size_t n) { return static_cast<uint8_t*>(malloc(n == 0 ? 1 : n)); }

static int Fail(const char* what, int round) {
  fprintf(stderr, "round %d: %s\n", round, what);
  return 1;
}

int main(int argc, char** argv) {
  const unsigned seed = argc > 1 ? static_cast<unsigned>(atoi(argv[1])) : 1;
  std::mt19937_64 rng(seed);
  long errors = 0, decoded = 0;
  for (int round = 0; round < 200000; round++) {
    const size_t n = rng() % 3 == 0 ? rng() % 64 : rng() % 9000;
    uint8_t* src = Exact(n);
    const int kind = rng() % 4;
    const unsigned period = 1 + rng() % 9;
    for (size_t i = 0; i < n; i++) {
      src[i] = kind == 0   ? rng()
               : kind == 1 ? 0
               : kind == 2 ? (i < n / 2 ? rng() : 0)
                           : static_cast<uint8_t>((i % period) * 37 + (rng() % 50 == 0));
    }
    const size_t worst = n + n / 255 + 16;
    uint8_t* roomy = Exact(worst);
    const int64_t length = CompressBlock(src, n, roomy, worst);
    if (length < 0) return Fail("no block within the worst case", round);
    uint8_t* block = Exact(length);
    if (CompressBlock(src, n, block, length) != length) return Fail("the block does not fit its own length", round);
    if (length > 0 && CompressBlock(src, n, block, length - 1) != -1) return Fail("one byte short was not refused", round);
    uint8_t* back = Exact(n);
    if (DecompressBlock(block, length, back, n) != int64_t(n) || memcmp(back, src, n) != 0) return Fail("round trip", round);
    for (int damage = 0; damage < 4; damage++) {
      const size_t badLength = rng() % 2 ? length : rng() % (length + 1);
      uint8_t* bad = Exact(badLength);
      memcpy(bad, block, badLength);
      if (badLength > 0) {
        for (int k = rng() % 4; k >= 0; k--) bad[rng() % badLength] ^= 1 << (rng() % 8);
      }
      if (rng() % 8 == 0) {
        for (size_t i = 0; i < badLength; i++) bad[i] = rng();
      }
      const size_t size = rng() % 3 ? n : rng() % (2 * n + 2);
      uint8_t* out = Exact(size);
      const int64_t result = DecompressBlock(bad, badLength, out, size);
      if (result >= 0 && size_t(result) != size) return Fail("decoded to another length than asked", round);
      (result < 0 ? errors : decoded)++;
      free(out);
      free(bad);
    }
    free(back);
    free(block);
    free(roomy);
    free(src);
  }
  printf("seed %u: 200000 rounds clean; damaged blocks: %ld refused, %ld decoded to their size\n", seed, errors, decoded);
  return 0;
}
