// Everything besides the ring that the file-system backends need from the
// OS and the CPU: aligned buffers for O_DIRECT, fallocate/fadvise/flock, and
// file mappings with an explicit cache-line flush for persistent memory.
#include "common.h"

// Linux-only (statx, fallocate, MAP_SYNC, <linux/stat.h>). Elsewhere the
// addon still builds for its portable part (the AES-CTR in cipher.cc) and
// InitMemory exports nothing, which the loader (hardware/native.ts) reports
// as UNSUPPORTED to UringFs and PmemFs.
#ifdef __linux__

#include <fcntl.h>
#include <linux/stat.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define RAFTLOG_X86 1
#endif

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

namespace raftlog {
namespace {

// ---- aligned buffers -------------------------------------------------------

// V8 cannot see memory behind an external ArrayBuffer; without telling it,
// a loop of O_DIRECT writes could pile up gigabytes of staging buffers
// before a GC. The size rides in the finalizer hint.
void FreeAligned(napi_env env, void* data, void* hint) {
  int64_t adjusted;
  napi_adjust_external_memory(env, -static_cast<int64_t>(reinterpret_cast<uintptr_t>(hint)), &adjusted);
  free(data);
}

// alignedAlloc(size, alignment) -> ArrayBuffer, zero-filled. Zeroing matters:
// O_DIRECT writes whole blocks, and the padding past the data must not leak
// old heap bytes to disk.
napi_value AlignedAlloc(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t size, alignment;
  if (argc < 2 || !GetInt64(env, argv[0], &size) || !GetInt64(env, argv[1], &alignment) || size <= 0 || alignment <= 0 ||
      (alignment & (alignment - 1)) != 0 || alignment % static_cast<int64_t>(sizeof(void*)) != 0)
    return ThrowType(env, "alignedAlloc(size > 0, alignment: power of two >= pointer size)");
  void* p = nullptr;
  int err = posix_memalign(&p, static_cast<size_t>(alignment), static_cast<size_t>(size));
  if (err != 0) return ThrowErrno(env, err, "posix_memalign");
  memset(p, 0, static_cast<size_t>(size));
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, static_cast<size_t>(size), FreeAligned,
                                       reinterpret_cast<void*>(static_cast<uintptr_t>(size)), &ab) != napi_ok) {
    free(p);
    return nullptr;
  }
  int64_t adjusted;
  napi_adjust_external_memory(env, size, &adjusted);
  return ab;
}

// addressOf(view) -> number: lets tests prove alignment without trusting us.
napi_value AddressOf(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint8_t* data;
  size_t len;
  if (argc < 1 || !GetBytes(env, argv[0], &data, &len)) return ThrowType(env, "addressOf(bytes)");
  return MakeNumber(env, static_cast<double>(reinterpret_cast<uintptr_t>(data)));
}

// ---- file calls ------------------------------------------------------------

napi_value Fallocate(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t fd, mode, offset, length;
  if (argc < 4 || !GetInt64(env, argv[0], &fd) || !GetInt64(env, argv[1], &mode) || !GetInt64(env, argv[2], &offset) ||
      !GetInt64(env, argv[3], &length))
    return ThrowType(env, "fallocate(fd, mode, offset, length)");
  int ret;
  do {
    ret = fallocate(static_cast<int>(fd), static_cast<int>(mode), offset, length);
  } while (ret < 0 && errno == EINTR);
  if (ret < 0) return ThrowErrno(env, errno, "fallocate");
  return Undefined(env);
}

// fadviseDontNeed(fd, offset = 0, length = 0): drop clean cached pages, e.g.
// of a log file that will only be read again by recovery.
napi_value FadviseDontNeed(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t fd, offset = 0, length = 0;
  if (argc < 1 || !GetInt64(env, argv[0], &fd) || (argc >= 2 && !GetInt64(env, argv[1], &offset)) ||
      (argc >= 3 && !GetInt64(env, argv[2], &length)))
    return ThrowType(env, "fadviseDontNeed(fd, offset?, length?)");
  int err = posix_fadvise(static_cast<int>(fd), offset, length, POSIX_FADV_DONTNEED);
  if (err != 0) return ThrowErrno(env, err, "posix_fadvise");
  return Undefined(env);
}

// preadCached(fd, target, targetOffset, length, position): preadv2 with
// RWF_NOWAIT, on the calling (event loop) thread. It copies what the page
// cache already holds and never waits for the device: it returns the bytes
// read (0 at end of file), or -1 when the first byte is not cached (EAGAIN)
// or the kernel or file system does not take the flag (EOPNOTSUPP, EINVAL),
// so the caller reads through the threadpool instead. A short count means
// the rest was not cached or past the end; the caller reads the rest its
// usual way. Other errors throw, shaped like node:fs's.
napi_value PreadCached(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t fd, target_offset, length, position;
  uint8_t* data;
  size_t size;
  if (argc < 5 || !GetInt64(env, argv[0], &fd) || !GetBytes(env, argv[1], &data, &size) ||
      !GetInt64(env, argv[2], &target_offset) || !GetInt64(env, argv[3], &length) || !GetInt64(env, argv[4], &position) ||
      target_offset < 0 || length < 0 || position < 0 || static_cast<uint64_t>(target_offset) + static_cast<uint64_t>(length) > size)
    return ThrowType(env, "preadCached(fd, target, targetOffset, length, position): range outside target");
#if defined(RWF_NOWAIT)
  iovec iov{data + target_offset, static_cast<size_t>(length)};
  ssize_t got;
  do {
    got = preadv2(static_cast<int>(fd), &iov, 1, position, RWF_NOWAIT);
  } while (got < 0 && errno == EINTR);
  if (got >= 0) return MakeNumber(env, static_cast<double>(got));
  if (errno == EAGAIN || errno == EOPNOTSUPP || errno == EINVAL) return MakeNumber(env, -1);
  return ThrowErrno(env, errno, "read");
#else
  (void)data;
  return MakeNumber(env, -1);
#endif
}

// flock(fd, exclusive, nonblocking): whole-file advisory lock. flock locks
// belong to the open file description, so a second open of the same file in
// this process conflicts too (unlike POSIX record locks).
napi_value Flock(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t fd;
  bool exclusive, nonblocking;
  if (argc < 3 || !GetInt64(env, argv[0], &fd) || !GetBool(env, argv[1], &exclusive) || !GetBool(env, argv[2], &nonblocking))
    return ThrowType(env, "flock(fd, exclusive, nonblocking)");
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (nonblocking ? LOCK_NB : 0);
  int ret;
  do {
    ret = flock(static_cast<int>(fd), op);
  } while (ret < 0 && errno == EINTR);
  if (ret < 0) return ThrowErrno(env, errno, "flock");
  return Undefined(env);
}

napi_value Funlock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t fd;
  if (argc < 1 || !GetInt64(env, argv[0], &fd)) return ThrowType(env, "funlock(fd)");
  if (flock(static_cast<int>(fd), LOCK_UN) < 0) return ThrowErrno(env, errno, "flock");
  return Undefined(env);
}

// statxDioAlign(fd) -> { memAlign, offsetAlign } | null. null when the kernel
// cannot say (pre-6.1); { 0, 0 } when the file does not support O_DIRECT.
napi_value StatxDioAlign(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t fd;
  if (argc < 1 || !GetInt64(env, argv[0], &fd)) return ThrowType(env, "statxDioAlign(fd)");
  struct statx stx;
  memset(&stx, 0, sizeof stx);
  long ret = syscall(__NR_statx, static_cast<int>(fd), "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx);
  if (ret < 0) {
    if (errno == ENOSYS || errno == EINVAL) {
      napi_value n;
      napi_get_null(env, &n);
      return n;
    }
    return ThrowErrno(env, errno, "statx");
  }
  if ((stx.stx_mask & STATX_DIOALIGN) == 0) {
    napi_value n;
    napi_get_null(env, &n);
    return n;
  }
  napi_value o;
  napi_create_object(env, &o);
  SetNamed(env, o, "memAlign", MakeNumber(env, stx.stx_dio_mem_align));
  SetNamed(env, o, "offsetAlign", MakeNumber(env, stx.stx_dio_offset_align));
  return o;
}

// ---- mappings --------------------------------------------------------------

struct Mapping {
  void* addr;
  size_t length;
  bool unmapped;
};

// Per-environment registry from base address to mapping, so munmap/msync can
// accept the ArrayBuffer the caller holds and refuse foreign memory.
struct Registry {
  std::unordered_map<uintptr_t, Mapping*> byAddr;
};

Registry* GetRegistry(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<Registry*>(data);
}

void FinalizeMapping(napi_env env, void* data, void* hint) {
  (void)data;
  Mapping* m = static_cast<Mapping*>(hint);
  if (!m->unmapped) {
    munmap(m->addr, m->length);
    m->unmapped = true;
    Registry* reg = GetRegistry(env);
    if (reg != nullptr) {
      auto it = reg->byAddr.find(reinterpret_cast<uintptr_t>(m->addr));
      if (it != reg->byAddr.end() && it->second == m) reg->byAddr.erase(it);
    }
  }
  delete m;
}

// mmap(fd, offset, length, writable, sync) -> { buffer, mapSync }. With sync,
// MAP_SHARED_VALIDATE|MAP_SYNC is tried first: the kernel accepts it only on
// a DAX mount, where it guarantees that flushed stores are durable without
// msync. Elsewhere it falls back to MAP_SHARED and reports mapSync: false.
napi_value Mmap(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t fd, offset, length;
  bool writable, wantSync;
  if (argc < 5 || !GetInt64(env, argv[0], &fd) || !GetInt64(env, argv[1], &offset) || !GetInt64(env, argv[2], &length) ||
      !GetBool(env, argv[3], &writable) || !GetBool(env, argv[4], &wantSync) || length <= 0 || offset < 0)
    return ThrowType(env, "mmap(fd, offset >= 0, length > 0, writable, sync)");
  long page = sysconf(_SC_PAGESIZE);
  if (offset % page != 0) return ThrowType(env, "mmap offset must be page-aligned");
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* addr = MAP_FAILED;
  bool mapSync = false;
  if (wantSync && writable) {
    addr = mmap(nullptr, static_cast<size_t>(length), prot, MAP_SHARED_VALIDATE | MAP_SYNC, static_cast<int>(fd), offset);
    if (addr != MAP_FAILED) {
      mapSync = true;
    } else if (errno != EOPNOTSUPP && errno != EINVAL) {
      return ThrowErrno(env, errno, "mmap");
    }
  }
  if (addr == MAP_FAILED) {
    addr = mmap(nullptr, static_cast<size_t>(length), prot, MAP_SHARED, static_cast<int>(fd), offset);
    if (addr == MAP_FAILED) return ThrowErrno(env, errno, "mmap");
  }
  Mapping* m = new Mapping{addr, static_cast<size_t>(length), false};
  napi_value ab;
  if (napi_create_external_arraybuffer(env, addr, m->length, FinalizeMapping, m, &ab) != napi_ok) {
    munmap(addr, m->length);
    delete m;
    return nullptr;
  }
  GetRegistry(env)->byAddr[reinterpret_cast<uintptr_t>(addr)] = m;
  napi_value o;
  napi_create_object(env, &o);
  SetNamed(env, o, "buffer", ab);
  SetNamed(env, o, "mapSync", MakeBool(env, mapSync));
  return o;
}

Mapping* LookupMapping(napi_env env, napi_value buffer) {
  bool isAb = false;
  napi_is_arraybuffer(env, buffer, &isAb);
  if (!isAb) {
    ThrowType(env, "expected the ArrayBuffer returned by mmap");
    return nullptr;
  }
  void* data;
  size_t len;
  napi_get_arraybuffer_info(env, buffer, &data, &len);
  Registry* reg = GetRegistry(env);
  auto it = reg->byAddr.find(reinterpret_cast<uintptr_t>(data));
  if (data == nullptr || it == reg->byAddr.end() || it->second->unmapped) {
    ThrowType(env, "not a live mapping created by mmap");
    return nullptr;
  }
  return it->second;
}

// munmap(buffer): unmaps and detaches the ArrayBuffer, so every view over it
// becomes empty instead of a use-after-unmap segfault.
napi_value Munmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1) return ThrowType(env, "munmap(buffer)");
  Mapping* m = LookupMapping(env, argv[0]);
  if (m == nullptr) return nullptr;
  GetRegistry(env)->byAddr.erase(reinterpret_cast<uintptr_t>(m->addr));
  // Detach first: the finalizer may run during detach and free `m`.
  void* addr = m->addr;
  size_t length = m->length;
  m->unmapped = true;
  napi_detach_arraybuffer(env, argv[0]);
  if (munmap(addr, length) < 0) return ThrowErrno(env, errno, "munmap");
  return Undefined(env);
}

bool MappedRange(napi_env env, napi_value* argv, size_t argc, Mapping** out, int64_t* offset, int64_t* length) {
  Mapping* m = LookupMapping(env, argv[0]);
  if (m == nullptr) return false;
  *offset = 0;
  *length = static_cast<int64_t>(m->length);
  if ((argc >= 2 && !GetInt64(env, argv[1], offset)) || (argc >= 3 && !GetInt64(env, argv[2], length)) || *offset < 0 ||
      *length < 0 || static_cast<uint64_t>(*offset + *length) > m->length) {
    ThrowType(env, "range outside the mapping");
    return false;
  }
  *out = m;
  return true;
}

// msync(buffer, offset?, length?): MS_SYNC over the pages covering the range.
napi_value Msync(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1) return ThrowType(env, "msync(buffer, offset?, length?)");
  Mapping* m;
  int64_t offset, length;
  if (!MappedRange(env, argv, argc, &m, &offset, &length)) return nullptr;
  if (length == 0) return Undefined(env);
  long page = sysconf(_SC_PAGESIZE);
  int64_t start = offset - offset % page;
  if (msync(static_cast<uint8_t*>(m->addr) + start, static_cast<size_t>(offset + length - start), MS_SYNC) < 0)
    return ThrowErrno(env, errno, "msync");
  return Undefined(env);
}

// ---- cache-line flush ------------------------------------------------------

enum class FlushKind { kNone, kClflush, kClflushopt, kClwb };

struct CpuFlush {
  bool clwb = false;
  bool clflushopt = false;
  bool clflush = false;
  unsigned lineSize = 64;
  FlushKind kind = FlushKind::kNone;
};

CpuFlush DetectFlush() {
  CpuFlush f;
#ifdef RAFTLOG_X86
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    f.clflush = (d & (1u << 19)) != 0;
    unsigned line = ((b >> 8) & 0xff) * 8;
    if (line != 0) f.lineSize = line;
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.clflushopt = (b & (1u << 23)) != 0;
    f.clwb = (b & (1u << 24)) != 0;
  }
  // clwb writes back without evicting (the next read still hits the cache);
  // clflushopt evicts but is weakly ordered; clflush serialises every line.
  f.kind = f.clwb ? FlushKind::kClwb : f.clflushopt ? FlushKind::kClflushopt : f.clflush ? FlushKind::kClflush : FlushKind::kNone;
#endif
  return f;
}

const CpuFlush& Flush() {
  static const CpuFlush f = DetectFlush();  // immutable after first use: safe across workers
  return f;
}

const char* FlushName(FlushKind k) {
  switch (k) {
    case FlushKind::kClwb: return "clwb";
    case FlushKind::kClflushopt: return "clflushopt";
    case FlushKind::kClflush: return "clflush";
    default: return "none";
  }
}

#ifdef RAFTLOG_X86
__attribute__((target("clwb"))) void FlushClwb(uintptr_t p, uintptr_t end, unsigned line) {
  for (; p < end; p += line) _mm_clwb(reinterpret_cast<void*>(p));
}
__attribute__((target("clflushopt"))) void FlushClflushopt(uintptr_t p, uintptr_t end, unsigned line) {
  for (; p < end; p += line) _mm_clflushopt(reinterpret_cast<void*>(p));
}
void FlushClflush(uintptr_t p, uintptr_t end, unsigned line) {
  for (; p < end; p += line) _mm_clflush(reinterpret_cast<void*>(p));
}
#endif

napi_value CpuFlushInfo(napi_env env, napi_callback_info info) {
  (void)info;
  const CpuFlush& f = Flush();
  napi_value o, name;
  napi_create_object(env, &o);
  SetNamed(env, o, "clwb", MakeBool(env, f.clwb));
  SetNamed(env, o, "clflushopt", MakeBool(env, f.clflushopt));
  SetNamed(env, o, "clflush", MakeBool(env, f.clflush));
  SetNamed(env, o, "lineSize", MakeNumber(env, f.lineSize));
  napi_create_string_utf8(env, FlushName(f.kind), NAPI_AUTO_LENGTH, &name);
  SetNamed(env, o, "instruction", name);
  return o;
}

// flushRange(bytes, offset?, length?) -> number of cache lines flushed. Works
// on any memory (mapping or not) so PmemFs can flush a view it already holds;
// ends with sfence so the write-backs are ordered before later stores.
napi_value FlushRange(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint8_t* data;
  size_t len;
  int64_t offset = 0, length = -1;
  if (argc < 1 || !GetBytes(env, argv[0], &data, &len) || (argc >= 2 && !GetInt64(env, argv[1], &offset)) ||
      (argc >= 3 && !GetInt64(env, argv[2], &length)))
    return ThrowType(env, "flushRange(bytes, offset?, length?)");
  if (length < 0) length = static_cast<int64_t>(len) - offset;
  if (offset < 0 || length < 0 || static_cast<uint64_t>(offset + length) > len) return ThrowType(env, "range outside bytes");
  const CpuFlush& f = Flush();
  if (length == 0) return MakeNumber(env, 0);
#ifdef RAFTLOG_X86
  uintptr_t start = reinterpret_cast<uintptr_t>(data + offset) & ~static_cast<uintptr_t>(f.lineSize - 1);
  uintptr_t end = reinterpret_cast<uintptr_t>(data + offset + length);
  switch (f.kind) {
    case FlushKind::kClwb: FlushClwb(start, end, f.lineSize); break;
    case FlushKind::kClflushopt: FlushClflushopt(start, end, f.lineSize); break;
    case FlushKind::kClflush: FlushClflush(start, end, f.lineSize); break;
    default:
      return ThrowErrno(env, ENOTSUP, "flushRange (no cache-line flush instruction)");
  }
  _mm_sfence();
  return MakeNumber(env, static_cast<double>((end - start + f.lineSize - 1) / f.lineSize));
#else
  (void)f;
  return ThrowErrno(env, ENOTSUP, "flushRange (not x86)");
#endif
}

void DeleteRegistry(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  delete static_cast<Registry*>(data);
}

}  // namespace

void InitMemory(napi_env env, napi_value exports) {
  napi_set_instance_data(env, new Registry(), DeleteRegistry, nullptr);
  napi_property_descriptor fns[] = {
      {"alignedAlloc", nullptr, AlignedAlloc, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"addressOf", nullptr, AddressOf, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"fallocate", nullptr, Fallocate, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"fadviseDontNeed", nullptr, FadviseDontNeed, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"preadCached", nullptr, PreadCached, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"flock", nullptr, Flock, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"funlock", nullptr, Funlock, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"statxDioAlign", nullptr, StatxDioAlign, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"mmap", nullptr, Mmap, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"munmap", nullptr, Munmap, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"msync", nullptr, Msync, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"cpuFlush", nullptr, CpuFlushInfo, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"flushRange", nullptr, FlushRange, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}

}  // namespace raftlog

#else  // !__linux__

namespace raftlog {
void InitMemory(napi_env, napi_value) {}
}  // namespace raftlog

#endif  // __linux__
