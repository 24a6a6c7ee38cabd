// LZ4 block compression for record payloads, in the framing lz4-napi's
// compressSync/uncompressSync use: a 4-byte little-endian uncompressed size,
// then one standard LZ4 block (docs/format.md, "Payload"). Written from the
// public block format description, not from the LZ4 sources.
//
// Why here and not lz4-napi: on a 4 KiB batch that binding costs 7-11 us a
// call (a Buffer per call, and no early exit on incompressible input), about
// a third of what the whole engine spends on a synced write. These calls
// write into memory the caller owns and allocate nothing.
//
// Block format, as used by both directions:
//   sequence = token, [literal length bytes], literals, offset (u16 LE),
//              [match length bytes]
//   token    = literal length (high 4 bits) | match length - 4 (low 4 bits);
//              a nibble of 15 continues in bytes of 255 ended by one < 255.
//   The last sequence is literals only (no offset). A match may overlap its
//   own output (offset < length): a run repeating its last `offset` bytes.
//   The encoder keeps the last 5 bytes literals and starts no match later
//   than 12 bytes before the end, as every LZ4 decoder expects.
#include "common.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace raftlog {
namespace {

constexpr size_t kMinMatch = 4;
constexpr size_t kLastLiterals = 5;   // the block's last bytes are always literals
constexpr size_t kMatchStartLimit = 12;  // no match starts within this many bytes of the end
constexpr size_t kMaxOffset = 65535;
constexpr int kHashLog = 12;
constexpr size_t kTableSize = size_t(1) << kHashLog;
// After 2^kSkipTrigger misses in a row the search step grows by one byte, and
// by one more every 2^kSkipTrigger misses after: incompressible input is
// crossed in about sqrt(2^(kSkipTrigger+1) * n) probes, not n (LZ4's fast mode).
constexpr unsigned kSkipTrigger = 6;

inline uint32_t Read32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline uint64_t Read64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline uint32_t Hash(uint32_t sequence) { return (sequence * 2654435761u) >> (32 - kHashLog); }

// Where each hash last occurred, as `epoch + position`. Each call takes a
// fresh range of epoch values, so slots written by earlier calls read as
// empty without clearing 16 KiB per call; only when the counter would wrap is
// the table cleared. thread_local: worker threads may load the addon too.
struct MatchTable {
  uint32_t slots[kTableSize];
  uint32_t next;
};
thread_local MatchTable table{};

// The epoch for an input of n bytes; every value it stores is >= the result.
uint32_t BeginEpoch(size_t n) {
  if (table.next == 0 || uint64_t(table.next) + n + 1 > 0xffffffffull) {
    std::memset(table.slots, 0, sizeof table.slots);
    table.next = 1;
  }
  const uint32_t epoch = table.next;
  table.next = static_cast<uint32_t>(epoch + n + 1);
  return epoch;
}

// Bytes equal at p and m, not reading at or past `limit` from p (m < p).
inline size_t CommonLength(const uint8_t* p, const uint8_t* m, const uint8_t* limit) {
  const uint8_t* const start = p;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  while (limit - p >= 8) {
    const uint64_t diff = Read64(p) ^ Read64(m);
    if (diff != 0) return size_t(p - start) + (__builtin_ctzll(diff) >> 3);
    p += 8;
    m += 8;
  }
#endif
  while (p < limit && *p == *m) {
    p++;
    m++;
  }
  return size_t(p - start);
}

// Bytes a length beyond its 15 in the token takes: 255s and a last byte.
inline size_t ExtraLengthBytes(size_t length) { return length >= 15 ? (length - 15) / 255 + 1 : 0; }

inline uint8_t* WriteExtraLength(uint8_t* op, size_t length) {
  size_t rest = length - 15;
  while (rest >= 255) {
    *op++ = 255;
    rest -= 255;
  }
  *op++ = static_cast<uint8_t>(rest);
  return op;
}

// Token's literal nibble, the literal length bytes and the literals.
inline uint8_t* WriteLiterals(uint8_t* token, const uint8_t* literals, size_t length) {
  uint8_t* op = token + 1;
  if (length >= 15) {
    *token = 15 << 4;
    op = WriteExtraLength(op, length);
  } else {
    *token = static_cast<uint8_t>(length << 4);
  }
  std::memcpy(op, literals, length);
  return op + length;
}

// Compresses src[0, n) into dst[0, capacity) as one LZ4 block. Returns the
// block's length, or -1 as soon as it is known not to fit. Every write is
// checked before it is made, and the encoding is a single forward pass, so
// -1 means the whole block would be longer than `capacity`, never less.
int64_t CompressBlock(const uint8_t* src, size_t n, uint8_t* dst, size_t capacity) {
  uint8_t* op = dst;
  uint8_t* const oend = dst + capacity;
  size_t anchor = 0;  // first byte not yet emitted
  if (n > kMatchStartLimit) {
    const uint32_t epoch = BeginEpoch(n);
    uint32_t* const slots = table.slots;
    const size_t lastMatchStart = n - kMatchStartLimit;
    const uint8_t* const matchLimit = src + n - kLastLiterals;
    slots[Hash(Read32(src))] = epoch;
    size_t ip = 1;
    uint32_t forwardHash = Hash(Read32(src + ip));
    for (;;) {
      // Find a 4-byte match for some position ip <= lastMatchStart.
      size_t match;
      {
        size_t forward = ip;
        size_t step = 1;
        unsigned probes = 1u << kSkipTrigger;
        for (;;) {
          const uint32_t h = forwardHash;
          ip = forward;
          forward += step;
          step = probes++ >> kSkipTrigger;
          if (forward > lastMatchStart + 1) goto last_literals;
          const uint32_t seen = slots[h];
          forwardHash = Hash(Read32(src + forward));
          slots[h] = epoch + static_cast<uint32_t>(ip);
          if (seen < epoch) continue;  // from an earlier call: empty
          match = seen - epoch;
          if (ip - match - 1 >= kMaxOffset) continue;  // too far back (or not back at all)
          if (Read32(src + match) == Read32(src + ip)) break;
        }
      }
      // Extend the match backwards over literals that also match.
      while (ip > anchor && match > 0 && src[ip - 1] == src[match - 1]) {
        ip--;
        match--;
      }
      {
        const size_t literals = ip - anchor;
        if (1 + ExtraLengthBytes(literals) + literals + 2 > size_t(oend - op)) return -1;
        uint8_t* token = op;
        op = WriteLiterals(token, src + anchor, literals);
        for (;;) {
          const size_t offset = ip - match;
          *op++ = static_cast<uint8_t>(offset);
          *op++ = static_cast<uint8_t>(offset >> 8);
          const size_t extra = CommonLength(src + ip + kMinMatch, src + match + kMinMatch, matchLimit);
          ip += kMinMatch + extra;
          if (ExtraLengthBytes(extra) > size_t(oend - op)) return -1;
          if (extra >= 15) {
            *token |= 15;
            op = WriteExtraLength(op, extra);
          } else {
            *token |= static_cast<uint8_t>(extra);
          }
          anchor = ip;
          if (ip > lastMatchStart) goto last_literals;
          // Index a position inside the match, then try a match right here
          // (runs and repeated records often continue at once).
          slots[Hash(Read32(src + ip - 2))] = epoch + static_cast<uint32_t>(ip - 2);
          const uint32_t h = Hash(Read32(src + ip));
          const uint32_t seen = slots[h];
          slots[h] = epoch + static_cast<uint32_t>(ip);
          if (seen < epoch) break;
          match = seen - epoch;
          if (ip - match - 1 >= kMaxOffset || Read32(src + match) != Read32(src + ip)) break;
          if (1 + 2 > size_t(oend - op)) return -1;
          token = op++;
          *token = 0;
        }
      }
      ip++;
      forwardHash = Hash(Read32(src + ip));
    }
  }
last_literals : {
  const size_t literals = n - anchor;
  if (1 + ExtraLengthBytes(literals) + literals > size_t(oend - op)) return -1;
  op = WriteLiterals(op, src + anchor, literals);
  return op - dst;
}
}

// Decoding results below zero; lz4Decompress returns them as they are.
enum DecodeError : int64_t {
  kNoPrefix = -1,       // fewer than 4 bytes: no size prefix
  kNoRoom = -2,         // the prefix declares more bytes than the destination holds
  kTruncated = -3,      // a length, literals or an offset run past the end of the block
  kBadOffset = -4,      // a match offset of 0, or before the start of the output
  kTooLong = -5,        // the block decodes to more bytes than the prefix declares
  kTooShort = -6,       // the block ends before the declared size is reached
};

// Reads the bytes continuing a length nibble of 15 into *length.
inline bool ReadExtraLength(const uint8_t** ip, const uint8_t* iend, size_t* length) {
  for (;;) {
    if (*ip >= iend) return false;
    const uint8_t b = *(*ip)++;
    *length += b;
    if (b != 255) return true;
  }
}

// Decodes the block src[0, n) into exactly `size` bytes at dst. Every read
// and write is checked against its end first; malformed input gives a
// DecodeError, never an access outside the two ranges.
int64_t DecompressBlock(const uint8_t* src, size_t n, uint8_t* dst, size_t size) {
  const uint8_t* ip = src;
  const uint8_t* const iend = src + n;
  uint8_t* op = dst;
  uint8_t* const oend = dst + size;
  for (;;) {
    if (ip >= iend) return kTruncated;
    const unsigned token = *ip++;
    size_t literals = token >> 4;
    if (literals == 15 && !ReadExtraLength(&ip, iend, &literals)) return kTruncated;
    if (literals > size_t(iend - ip)) return kTruncated;
    if (literals > size_t(oend - op)) return kTooLong;
    std::memcpy(op, ip, literals);
    op += literals;
    ip += literals;
    if (ip == iend) break;  // the last sequence has no match
    if (iend - ip < 2) return kTruncated;
    const size_t offset = size_t(ip[0]) | size_t(ip[1]) << 8;
    ip += 2;
    if (offset == 0 || offset > size_t(op - dst)) return kBadOffset;
    size_t length = token & 15;
    if (length == 15 && !ReadExtraLength(&ip, iend, &length)) return kTruncated;
    length += kMinMatch;
    if (length > size_t(oend - op)) return kTooLong;
    const uint8_t* const from = op - offset;
    if (offset >= length) {
      std::memcpy(op, from, length);
      op += length;
    } else {
      // Overlapping: the output repeats its last `offset` bytes. Copying
      // from `from` the bytes written so far since it (a whole number of
      // periods) doubles the run each step without overlap.
      uint8_t* const end = op + length;
      while (op < end) {
        const size_t chunk = std::min(size_t(op - from), size_t(end - op));
        std::memcpy(op, from, chunk);
        op += chunk;
      }
    }
  }
  if (op != oend) return kTooShort;
  return op - dst;
}

bool GetRange(napi_env env, napi_value bytes, napi_value start, napi_value end, uint8_t** data, size_t* from, size_t* to) {
  size_t length;
  uint32_t s, e;
  if (!GetBytes(env, bytes, data, &length) || !GetUint32(start, env, &s) || !GetUint32(end, env, &e)) return false;
  if (s > e || e > length) return false;
  *from = s;
  *to = e;
  return true;
}

// The arguments both calls take: (src, srcStart, srcEnd, dst, dstStart, dstLimit).
struct Ranges {
  const uint8_t* in;
  size_t n;
  uint8_t* out;
  size_t room;
};

// Reads the arguments into *ranges, or throws a TypeError naming `name` and
// returns false: byte arrays, u32 ranges inside them, not overlapping.
bool GetRanges(napi_env env, napi_callback_info info, const char* name, Ranges* ranges) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint8_t *src, *dst;
  size_t srcStart, srcEnd, dstStart, dstLimit;
  std::string why;
  if (argc < 6 || !GetRange(env, argv[0], argv[1], argv[2], &src, &srcStart, &srcEnd) ||
      !GetRange(env, argv[3], argv[4], argv[5], &dst, &dstStart, &dstLimit)) {
    why = "(src, srcStart, srcEnd, dst, dstStart, dstLimit): byte arrays and u32 ranges inside them";
  } else {
    *ranges = {src + srcStart, srcEnd - srcStart, dst + dstStart, dstLimit - dstStart};
    const bool overlap = ranges->in < ranges->out + ranges->room && ranges->out < ranges->in + ranges->n;
    if (!overlap) return true;
    why = ": the source and destination ranges overlap";
  }
  ThrowType(env, (name + why).c_str());
  return false;
}

// lz4Compress(src, srcStart, srcEnd, dst, dstStart, dstLimit): writes the
// size prefix and the block at dst[dstStart, dstLimit) and returns the bytes
// written, or 0 when they would not fit there.
napi_value Lz4Compress(napi_env env, napi_callback_info info) {
  Ranges r;
  if (!GetRanges(env, info, "lz4Compress", &r)) return nullptr;
  if (r.room < 4) return MakeNumber(env, 0);
  const int64_t block = CompressBlock(r.in, r.n, r.out + 4, r.room - 4);
  if (block < 0) return MakeNumber(env, 0);
  for (int i = 0; i < 4; i++) r.out[i] = static_cast<uint8_t>(r.n >> (8 * i));
  return MakeNumber(env, 4 + block);
}

// lz4Decompress(src, srcStart, srcEnd, dst, dstStart, dstLimit): decodes the
// prefixed block src[srcStart, srcEnd) to dst[dstStart, ...) and returns its
// length, or a DecodeError (below zero) for malformed input.
napi_value Lz4Decompress(napi_env env, napi_callback_info info) {
  Ranges r;
  if (!GetRanges(env, info, "lz4Decompress", &r)) return nullptr;
  if (r.n < 4) return MakeNumber(env, kNoPrefix);
  const size_t size = size_t(r.in[0]) | size_t(r.in[1]) << 8 | size_t(r.in[2]) << 16 | size_t(r.in[3]) << 24;
  if (size > r.room) return MakeNumber(env, kNoRoom);
  return MakeNumber(env, DecompressBlock(r.in + 4, r.n - 4, r.out, size));
}

}  // namespace

void InitLz4(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "lz4Compress", NAPI_AUTO_LENGTH, Lz4Compress, nullptr, &fn);
  SetNamed(env, exports, "lz4Compress", fn);
  napi_create_function(env, "lz4Decompress", NAPI_AUTO_LENGTH, Lz4Decompress, nullptr, &fn);
  SetNamed(env, exports, "lz4Decompress", fn);
}

}  // namespace raftlog
