// CRC32C (Castagnoli) for a whole batch in one call. The write path checks
// each entry and then the payload around them; done entry by entry through a
// JS binding that is six native calls per typical write, and the calls, not
// the bytes, were most of the cost (src/format/checksum.ts). Here one call
// fills every entry's CRC in place and returns the payload's.
//
// Hardware CRC32C only: SSE4.2 on x86-64 (checked with cpuid at load), the
// ARMv8 CRC extension on arm64 when the compiler targets it. Where neither is
// there, crc32cBatchAccelerated is false and the JS side keeps its own path
// (a table-driven C loop would be slower than the binding it replaces).
#include "common.h"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <nmmintrin.h>
#define RAFTLOG_CRC_X86 1
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#define RAFTLOG_CRC_ARM 1
#endif

namespace raftlog {
namespace {

#if defined(RAFTLOG_CRC_X86)
bool Accelerated() {
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
  return (c & bit_SSE4_2) != 0;
}

__attribute__((target("sse4.2"))) uint32_t Extend(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    n--;
  }
  while (n >= 32) {
    uint64_t w0, w1, w2, w3;
    std::memcpy(&w0, p, 8);
    std::memcpy(&w1, p + 8, 8);
    std::memcpy(&w2, p + 16, 8);
    std::memcpy(&w3, p + 24, 8);
    c = _mm_crc32_u64(c, w0);
    c = _mm_crc32_u64(c, w1);
    c = _mm_crc32_u64(c, w2);
    c = _mm_crc32_u64(c, w3);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    n--;
  }
  return static_cast<uint32_t>(c);
}
#elif defined(RAFTLOG_CRC_ARM)
bool Accelerated() { return true; }

uint32_t Extend(uint32_t c, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = __crc32cd(c, w);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = __crc32cb(c, *p++);
    n--;
  }
  return c;
}
#else
bool Accelerated() { return false; }

uint32_t Extend(uint32_t, const uint8_t*, size_t) { return 0; }
#endif

const bool kAccelerated = Accelerated();

// The standard CRC32C of bytes, with `seed` as the CRC of what came before.
uint32_t Crc32c(const uint8_t* p, size_t n, uint32_t seed) { return ~Extend(~seed, p, n); }

bool GetU32Array(napi_env env, napi_value v, uint32_t** data, size_t* count) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  void* ptr = nullptr;
  if (napi_get_typedarray_info(env, v, &type, count, &ptr, &ab, &offset) != napi_ok) return false;
  if (type != napi_uint32_array) return false;
  *data = static_cast<uint32_t*>(ptr);
  return true;
}

// crc32cBatch(bytes, payloadStart, payloadEnd, entryOffsets, entryLengths, count)
// For i < count: the entry at bytes[payloadStart + entryOffsets[i]], of
// entryLengths[i] bytes, gets its CRC32C written little-endian into the 4
// bytes before it. Returns the CRC32C of bytes[payloadStart, payloadEnd),
// taken after. Every range is checked against the payload first; nothing is
// written unless all of them are inside it.
napi_value Crc32cBatch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 6) return ThrowType(env, "crc32cBatch(bytes, payloadStart, payloadEnd, entryOffsets, entryLengths, count)");
  uint8_t* bytes;
  size_t length;
  if (!GetBytes(env, argv[0], &bytes, &length)) return ThrowType(env, "crc32cBatch: bytes must be a Uint8Array");
  uint32_t start, end, count;
  if (!GetUint32(argv[1], env, &start) || !GetUint32(argv[2], env, &end) || !GetUint32(argv[5], env, &count)) {
    return ThrowType(env, "crc32cBatch: payloadStart, payloadEnd and count must be u32");
  }
  uint32_t *offsets, *lengths;
  size_t offsetCount, lengthCount;
  if (!GetU32Array(env, argv[3], &offsets, &offsetCount) || !GetU32Array(env, argv[4], &lengths, &lengthCount)) {
    return ThrowType(env, "crc32cBatch: entryOffsets and entryLengths must be Uint32Arrays");
  }
  if (start > end || end > length || count > offsetCount || count > lengthCount) {
    return ThrowType(env, "crc32cBatch: payload or entry count out of range");
  }
  const uint64_t payload = end - start;
  for (uint32_t i = 0; i < count; i++) {
    if (offsets[i] < 4 || uint64_t(offsets[i]) + lengths[i] > payload) {
      return ThrowType(env, "crc32cBatch: an entry lies outside the payload");
    }
  }
  if (!kAccelerated) return ThrowType(env, "crc32cBatch: no hardware CRC32C here (check crc32cBatchAccelerated)");
  uint8_t* base = bytes + start;
  for (uint32_t i = 0; i < count; i++) {
    const uint32_t crc = Crc32c(base + offsets[i], lengths[i], 0);
    uint8_t* at = base + offsets[i] - 4;
    at[0] = static_cast<uint8_t>(crc);
    at[1] = static_cast<uint8_t>(crc >> 8);
    at[2] = static_cast<uint8_t>(crc >> 16);
    at[3] = static_cast<uint8_t>(crc >> 24);
  }
  napi_value result;
  napi_create_uint32(env, Crc32c(base, payload, 0), &result);
  return result;
}

}  // namespace

void InitCrc32c(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "crc32cBatch", NAPI_AUTO_LENGTH, Crc32cBatch, nullptr, &fn);
  SetNamed(env, exports, "crc32cBatch", fn);
  SetNamed(env, exports, "crc32cBatchAccelerated", MakeBool(env, kAccelerated));
}

}  // namespace raftlog
