// A minimal io_uring binding over the raw syscalls (no liburing): the JS side
// prepares SQEs, calls submit() once per event-loop turn, and receives
// completions in batches on the event loop. The ring's eventfd is registered
// with IORING_REGISTER_EVENTFD and watched by a uv_poll handle, so nothing
// busy-polls and nothing blocks the loop; the handle is unref'd whenever no
// request is in flight so an idle ring never keeps the process alive.
#include "common.h"

// Linux-only (io_uring syscalls, <linux/io_uring.h>). Elsewhere the addon
// still builds for its portable part (the AES-CTR in cipher.cc) and InitRing
// exports nothing, which the loader (hardware/native.ts) reports as
// UNSUPPORTED to UringFs.
#ifdef __linux__

#include <linux/io_uring.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace raftlog {
namespace {

int SysSetup(unsigned entries, io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}
int SysEnter(int fd, unsigned toSubmit, unsigned minComplete, unsigned flags) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, nullptr, 0));
}
int SysRegister(int fd, unsigned op, const void* arg, unsigned nr) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, op, arg, nr));
}

template <typename T>
T LoadAcquire(const T* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
template <typename T>
void StoreRelease(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// Above this many buffers a writev would fail with EINVAL; the JS side
// concatenates instead, so this is a guard, not a code path.
constexpr uint32_t kIovMax = 1024;

// Added in Linux 6.9; older uapi headers (this Debian's) lack the name. The
// value is fixed ABI, and the ring's probe says whether the kernel has it.
constexpr uint8_t kOpFtruncate = 55;

struct Ring;

// The poll handle outlives the Ring: uv_close completes on a later loop
// iteration, and until its callback has run the addon must stay loaded. So
// the async cleanup hook (which is what holds a worker's teardown, and the
// dlclose of this addon, back) is registered on the box and removed only in
// the close callback.
struct PollBox {
  uv_poll_t poll;
  Ring* ring = nullptr;  // null once the ring is torn down
  napi_async_cleanup_hook_handle hook = nullptr;
};

struct Ring {
  napi_env env = nullptr;
  napi_ref self = nullptr;  // weak while idle, strong while requests are in flight
  napi_ref callback = nullptr;
  napi_async_context asyncContext = nullptr;

  int ringFd = -1;
  int eventFd = -1;
  unsigned features = 0;
  unsigned setupFlags = 0;

  void* sqRing = MAP_FAILED;
  size_t sqRingSize = 0;
  void* cqRing = MAP_FAILED;
  size_t cqRingSize = 0;
  io_uring_sqe* sqes = static_cast<io_uring_sqe*>(MAP_FAILED);
  size_t sqesSize = 0;

  unsigned* sqHead = nullptr;
  unsigned* sqTail = nullptr;
  unsigned* sqArray = nullptr;
  unsigned sqMask = 0;
  unsigned sqEntries = 0;
  unsigned localTail = 0;  // SQEs prepared but whose tail is not yet published
  unsigned unsubmitted = 0;

  unsigned* cqHead = nullptr;
  unsigned* cqTail = nullptr;
  io_uring_cqe* cqes = nullptr;
  unsigned cqMask = 0;
  unsigned cqEntries = 0;

  PollBox* box = nullptr;
  bool closed = false;
  uint8_t supported[256] = {0};  // IORING_REGISTER_PROBE result, by opcode

  double enters = 0;         // io_uring_enter calls that submitted something
  double sqesSubmitted = 0;
  double completions = 0;
  int64_t inflight = 0;

  // writev needs its iovec array to stay valid until the kernel has read it;
  // keeping it until the completion is simplest and costs nothing.
  std::unordered_map<uint64_t, iovec*> iovecs;
};

void TearDown(Ring* r);

void OnPollClosed(uv_handle_t* h) {
  PollBox* box = static_cast<PollBox*>(h->data);
  if (box->hook != nullptr) napi_remove_async_cleanup_hook(box->hook);
  delete box;
}

void SetInflight(Ring* r, int64_t next) {
  bool wasBusy = r->inflight > 0;
  bool busy = next > 0;
  r->inflight = next;
  if (wasBusy == busy || r->closed) return;
  uint32_t count;
  if (busy) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&r->box->poll));
    napi_reference_ref(r->env, r->self, &count);
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(&r->box->poll));
    napi_reference_unref(r->env, r->self, &count);
  }
}

void Deliver(Ring* r) {
  napi_env env = r->env;
  for (;;) {
    if (r->closed) return;
    unsigned head = *r->cqHead;
    unsigned tail = LoadAcquire(r->cqTail);
    unsigned n = tail - head;
    if (n == 0) return;

    // A worker's environment spins its loop once more while tearing down
    // (Environment::CleanupHandles runs before any cleanup hook), and there
    // V8 refuses to allocate: a failed call leaves the CQ untouched and
    // delivers nothing, since no JS will ever run to receive it.
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value ab = nullptr, arr = nullptr;
    void* data = nullptr;
    if (napi_create_arraybuffer(env, static_cast<size_t>(n) * 3 * sizeof(int32_t), &data, &ab) != napi_ok || data == nullptr) {
      napi_close_handle_scope(env, scope);
      return;
    }
    int32_t* out = static_cast<int32_t*>(data);
    for (unsigned i = 0; i < n; i++) {
      const io_uring_cqe& c = r->cqes[(head + i) & r->cqMask];
      auto it = r->iovecs.find(c.user_data);
      if (it != r->iovecs.end()) {
        free(it->second);
        r->iovecs.erase(it);
      }
      // user_data is a JS-assigned 32-bit id; flags are passed for completeness.
      out[i * 3] = static_cast<int32_t>(static_cast<uint32_t>(c.user_data));
      out[i * 3 + 1] = c.res;
      out[i * 3 + 2] = static_cast<int32_t>(c.flags);
    }
    StoreRelease(r->cqHead, tail);
    r->completions += n;
    napi_value cb = nullptr, recv = nullptr, result;
    if (napi_create_typedarray(env, napi_int32_array, static_cast<size_t>(n) * 3, ab, 0, &arr) != napi_ok ||
        napi_get_reference_value(env, r->callback, &cb) != napi_ok || cb == nullptr) {
      napi_close_handle_scope(env, scope);
      return;
    }
    napi_get_reference_value(env, r->self, &recv);
    if (recv == nullptr) napi_get_undefined(env, &recv);
    // Drop the in-flight count before calling out, so a callback that submits
    // more work re-refs the handle instead of racing with the unref.
    SetInflight(r, r->inflight - n);
    napi_status st = napi_make_callback(env, r->asyncContext, recv, cb, 1, &arr, &result);
    if (st != napi_ok) {
      // napi_pending_exception also means "this environment can no longer
      // run JS" (it is terminating); only a real exception is rethrown.
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      napi_value exc = nullptr;
      if (pending) napi_get_and_clear_last_exception(env, &exc);
      napi_close_handle_scope(env, scope);
      if (pending && exc != nullptr) napi_fatal_exception(env, exc);
      return;
    }
    napi_close_handle_scope(env, scope);
  }
}

void OnPoll(uv_poll_t* handle, int status, int events) {
  (void)events;
  Ring* r = static_cast<PollBox*>(handle->data)->ring;
  if (r == nullptr || r->closed) return;
  uint64_t value;
  // Reset the eventfd before reading the CQ: a CQE posted after this read
  // re-arms it, so none can be missed.
  ssize_t ignored = read(r->eventFd, &value, sizeof value);
  (void)ignored;
  (void)status;
  Deliver(r);
}

void OnAsyncCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  (void)handle;
  PollBox* box = static_cast<PollBox*>(arg);
  // Already torn down: the pending close callback removes the hook.
  if (box->ring != nullptr) TearDown(box->ring);
}

void TearDown(Ring* r) {
  if (r->closed) return;
  r->closed = true;
  if (r->box != nullptr) {
    r->box->ring = nullptr;
    uv_poll_stop(&r->box->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&r->box->poll), OnPollClosed);
    r->box = nullptr;
  }
  if (r->inflight > 0) {
    uint32_t count;
    napi_reference_unref(r->env, r->self, &count);
  }
  r->inflight = 0;
  if (r->ringFd >= 0) close(r->ringFd);  // the kernel cancels and reaps what is left
  if (r->eventFd >= 0) close(r->eventFd);
  r->ringFd = r->eventFd = -1;
  if (r->sqes != MAP_FAILED) munmap(r->sqes, r->sqesSize);
  if (r->cqRing != MAP_FAILED && r->cqRing != r->sqRing) munmap(r->cqRing, r->cqRingSize);
  if (r->sqRing != MAP_FAILED) munmap(r->sqRing, r->sqRingSize);
  r->sqes = static_cast<io_uring_sqe*>(MAP_FAILED);
  r->sqRing = r->cqRing = MAP_FAILED;
  for (auto& kv : r->iovecs) free(kv.second);
  r->iovecs.clear();
  if (r->callback != nullptr) {
    napi_delete_reference(r->env, r->callback);
    r->callback = nullptr;
  }
  if (r->asyncContext != nullptr) {
    napi_async_destroy(r->env, r->asyncContext);
    r->asyncContext = nullptr;
  }
}

void Finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  Ring* r = static_cast<Ring*>(data);
  TearDown(r);
  if (r->self != nullptr) napi_delete_reference(env, r->self);
  delete r;
}

// Returns the errno of the failing step, 0 on success.
int SetupRing(Ring* r, unsigned entries) {
  io_uring_params p;
  int fd = -1;
  // SUBMIT_ALL keeps one bad SQE from stranding the rest of a batch; CLAMP
  // turns an oversized queueDepth into the kernel maximum instead of EINVAL.
  const unsigned attempts[] = {
      IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
      0,
  };
  for (unsigned flags : attempts) {
    memset(&p, 0, sizeof p);
    p.flags = flags;
    p.cq_entries = entries * 2;
    fd = SysSetup(entries, &p);
    if (fd >= 0) {
      r->setupFlags = flags;
      break;
    }
    if (errno != EINVAL) return errno;
  }
  if (fd < 0) return errno;
  r->ringFd = fd;
  r->features = p.features;

  r->sqRingSize = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cqRingSize = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) {
    if (r->cqRingSize > r->sqRingSize) r->sqRingSize = r->cqRingSize;
    r->cqRingSize = r->sqRingSize;
  }
  r->sqRing = mmap(nullptr, r->sqRingSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (r->sqRing == MAP_FAILED) return errno;
  if (single) {
    r->cqRing = r->sqRing;
  } else {
    r->cqRing = mmap(nullptr, r->cqRingSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (r->cqRing == MAP_FAILED) return errno;
  }
  r->sqesSize = p.sq_entries * sizeof(io_uring_sqe);
  void* sqes = mmap(nullptr, r->sqesSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) return errno;
  r->sqes = static_cast<io_uring_sqe*>(sqes);

  auto* sq = static_cast<uint8_t*>(r->sqRing);
  r->sqHead = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  r->sqTail = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  r->sqArray = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  r->sqMask = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  r->sqEntries = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_entries);
  r->localTail = *r->sqTail;

  auto* cq = static_cast<uint8_t*>(r->cqRing);
  r->cqHead = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
  r->cqTail = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
  r->cqes = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
  r->cqMask = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
  r->cqEntries = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_entries);

  // Kernels before 5.6 lack the probe; then only the 5.1 opcodes are assumed.
  size_t probeSize = sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op);
  auto* probe = static_cast<io_uring_probe*>(calloc(1, probeSize));
  if (probe != nullptr && SysRegister(fd, IORING_REGISTER_PROBE, probe, 256) >= 0) {
    for (unsigned i = 0; i < probe->ops_len && i < 256; i++)
      if (probe->ops[i].flags & IO_URING_OP_SUPPORTED) r->supported[probe->ops[i].op] = 1;
  } else {
    r->supported[IORING_OP_NOP] = r->supported[IORING_OP_READV] = r->supported[IORING_OP_WRITEV] = 1;
    r->supported[IORING_OP_FSYNC] = 1;
  }
  free(probe);

  r->eventFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->eventFd < 0) return errno;
  if (SysRegister(fd, IORING_REGISTER_EVENTFD, &r->eventFd, 1) < 0) return errno;
  return 0;
}

Ring* Unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value thisArg;
  napi_get_cb_info(env, info, argc, argv, &thisArg, nullptr);
  void* data = nullptr;
  if (napi_unwrap(env, thisArg, &data) != napi_ok || data == nullptr) {
    ThrowType(env, "not a Ring");
    return nullptr;
  }
  Ring* r = static_cast<Ring*>(data);
  if (r->closed) {
    napi_throw_error(env, "ERR_RING_CLOSED", "io_uring instance is closed");
    return nullptr;
  }
  return r;
}

io_uring_sqe* NextSqe(Ring* r) {
  unsigned head = LoadAcquire(r->sqHead);
  if (r->localTail - head >= r->sqEntries) return nullptr;
  unsigned idx = r->localTail & r->sqMask;
  io_uring_sqe* sqe = &r->sqes[idx];
  memset(sqe, 0, sizeof *sqe);
  r->sqArray[idx] = idx;
  r->localTail++;
  r->unsubmitted++;
  return sqe;
}

// new Ring(entries, onComplete)
napi_value New(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], thisArg;
  napi_get_cb_info(env, info, &argc, argv, &thisArg, nullptr);
  uint32_t entries;
  if (argc < 2 || !GetUint32(argv[0], env, &entries) || entries == 0) return ThrowType(env, "entries must be a positive integer");
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) return ThrowType(env, "onComplete must be a function");

  Ring* r = new Ring();
  r->env = env;
  int err = SetupRing(r, entries);
  if (err != 0) {
    TearDown(r);
    delete r;
    return ThrowErrno(env, err, "io_uring_setup");
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  PollBox* box = new PollBox();
  int uerr = uv_poll_init(loop, &box->poll, r->eventFd);
  if (uerr != 0) {
    delete box;
    TearDown(r);
    delete r;
    return ThrowErrno(env, -uerr, "uv_poll_init");
  }
  box->poll.data = box;
  box->ring = r;
  r->box = box;
  uv_poll_start(&box->poll, UV_READABLE, OnPoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(&box->poll));

  napi_create_reference(env, argv[1], 1, &r->callback);
  napi_value resourceName;
  napi_create_string_utf8(env, "raftlog:io_uring", NAPI_AUTO_LENGTH, &resourceName);
  napi_async_init(env, nullptr, resourceName, &r->asyncContext);
  napi_add_async_cleanup_hook(env, OnAsyncCleanup, box, &box->hook);
  napi_wrap(env, thisArg, r, Finalize, nullptr, &r->self);
  return thisArg;
}

// prepWrite(id, fd, buffers: Uint8Array[], position, link) -> boolean (false: SQ full)
napi_value PrepWrite(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  Ring* r = Unwrap(env, info, &argc, argv);
  if (r == nullptr) return nullptr;
  uint32_t id, count;
  int64_t fd, position;
  bool link = false;
  if (argc < 5 || !GetUint32(argv[0], env, &id) || !GetInt64(env, argv[1], &fd) || !GetInt64(env, argv[3], &position) ||
      !GetBool(env, argv[4], &link))
    return ThrowType(env, "prepWrite(id, fd, buffers, position, link)");
  bool isArray;
  napi_is_array(env, argv[2], &isArray);
  if (!isArray) return ThrowType(env, "buffers must be an array");
  napi_get_array_length(env, argv[2], &count);
  if (count == 0 || count > kIovMax) return ThrowType(env, "buffers must hold 1..1024 entries");

  iovec* iov = static_cast<iovec*>(malloc(sizeof(iovec) * count));
  for (uint32_t i = 0; i < count; i++) {
    napi_value el;
    napi_get_element(env, argv[2], i, &el);
    uint8_t* data;
    size_t len;
    if (!GetBytes(env, el, &data, &len)) {
      free(iov);
      return ThrowType(env, "buffers must be Uint8Arrays");
    }
    iov[i].iov_base = data;
    iov[i].iov_len = len;
  }
  io_uring_sqe* sqe = NextSqe(r);
  if (sqe == nullptr) {
    free(iov);
    return MakeBool(env, false);
  }
  sqe->fd = static_cast<int>(fd);
  sqe->off = static_cast<uint64_t>(position);
  sqe->user_data = id;
  sqe->flags = link ? IOSQE_IO_LINK : 0;
  if (count == 1) {
    sqe->opcode = IORING_OP_WRITE;
    sqe->addr = reinterpret_cast<uint64_t>(iov[0].iov_base);
    sqe->len = static_cast<uint32_t>(iov[0].iov_len);
    free(iov);
  } else {
    sqe->opcode = IORING_OP_WRITEV;
    sqe->addr = reinterpret_cast<uint64_t>(iov);
    sqe->len = count;
    auto it = r->iovecs.find(id);
    if (it != r->iovecs.end()) free(it->second);
    r->iovecs[id] = iov;
  }
  return MakeBool(env, true);
}

// prepRead(id, fd, target, targetOffset, length, position, link) -> boolean
napi_value PrepRead(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  Ring* r = Unwrap(env, info, &argc, argv);
  if (r == nullptr) return nullptr;
  uint32_t id;
  int64_t fd, targetOffset, length, position;
  bool link = false;
  uint8_t* data;
  size_t size;
  if (argc < 7 || !GetUint32(argv[0], env, &id) || !GetInt64(env, argv[1], &fd) || !GetBytes(env, argv[2], &data, &size) ||
      !GetInt64(env, argv[3], &targetOffset) || !GetInt64(env, argv[4], &length) || !GetInt64(env, argv[5], &position) ||
      !GetBool(env, argv[6], &link))
    return ThrowType(env, "prepRead(id, fd, target, targetOffset, length, position, link)");
  if (targetOffset < 0 || length < 0 || static_cast<uint64_t>(targetOffset + length) > size || length > 0x7ffff000)
    return ThrowType(env, "read range outside target");
  io_uring_sqe* sqe = NextSqe(r);
  if (sqe == nullptr) return MakeBool(env, false);
  sqe->opcode = IORING_OP_READ;
  sqe->fd = static_cast<int>(fd);
  sqe->addr = reinterpret_cast<uint64_t>(data + targetOffset);
  sqe->len = static_cast<uint32_t>(length);
  sqe->off = static_cast<uint64_t>(position);
  sqe->user_data = id;
  sqe->flags = link ? IOSQE_IO_LINK : 0;
  return MakeBool(env, true);
}

// prepFsync(id, fd, datasync, link) -> boolean
napi_value PrepFsync(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  Ring* r = Unwrap(env, info, &argc, argv);
  if (r == nullptr) return nullptr;
  uint32_t id;
  int64_t fd;
  bool datasync, link;
  if (argc < 4 || !GetUint32(argv[0], env, &id) || !GetInt64(env, argv[1], &fd) || !GetBool(env, argv[2], &datasync) ||
      !GetBool(env, argv[3], &link))
    return ThrowType(env, "prepFsync(id, fd, datasync, link)");
  io_uring_sqe* sqe = NextSqe(r);
  if (sqe == nullptr) return MakeBool(env, false);
  sqe->opcode = IORING_OP_FSYNC;
  sqe->fd = static_cast<int>(fd);
  sqe->fsync_flags = datasync ? IORING_FSYNC_DATASYNC : 0;
  sqe->user_data = id;
  sqe->flags = link ? IOSQE_IO_LINK : 0;
  return MakeBool(env, true);
}

// prepFallocate(id, fd, mode, offset, length, link) -> boolean
napi_value PrepFallocate(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  Ring* r = Unwrap(env, info, &argc, argv);
  if (r == nullptr) return nullptr;
  uint32_t id, mode;
  int64_t fd, offset, length;
  bool link;
  if (argc < 6 || !GetUint32(argv[0], env, &id) || !GetInt64(env, argv[1], &fd) || !GetUint32(argv[2], env, &mode) ||
      !GetInt64(env, argv[3], &offset) || !GetInt64(env, argv[4], &length) || !GetBool(env, argv[5], &link))
    return ThrowType(env, "prepFallocate(id, fd, mode, offset, length, link)");
  io_uring_sqe* sqe = NextSqe(r);
  if (sqe == nullptr) return MakeBool(env, false);
  sqe->opcode = IORING_OP_FALLOCATE;
  sqe->fd = static_cast<int>(fd);
  sqe->off = static_cast<uint64_t>(offset);
  sqe->addr = static_cast<uint64_t>(length);
  sqe->len = mode;
  sqe->user_data = id;
  sqe->flags = link ? IOSQE_IO_LINK : 0;
  return MakeBool(env, true);
}

// prepFtruncate(id, fd, length, link) -> boolean. Lets a barrier fix the file
// size inside the same linked chain as its writes and fdatasync.
napi_value PrepFtruncate(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  Ring* r = Unwrap(env, info, &argc, argv);
  if (r == nullptr) return nullptr;
  uint32_t id;
  int64_t fd, length;
  bool link;
  if (argc < 4 || !GetUint32(argv[0], env, &id) || !GetInt64(env, argv[1], &fd) || !GetInt64(env, argv[2], &length) ||
      !GetBool(env, argv[3], &link) || length < 0)
    return ThrowType(env, "prepFtruncate(id, fd, length, link)");
  if (!r->supported[kOpFtruncate]) return ThrowErrno(env, EOPNOTSUPP, "IORING_OP_FTRUNCATE");
  io_uring_sqe* sqe = NextSqe(r);
  if (sqe == nullptr) return MakeBool(env, false);
  sqe->opcode = kOpFtruncate;
  sqe->fd = static_cast<int>(fd);
  sqe->off = static_cast<uint64_t>(length);
  sqe->user_data = id;
  sqe->flags = link ? IOSQE_IO_LINK : 0;
  return MakeBool(env, true);
}

// supports(name) -> whether this kernel implements the operation.
napi_value Supports(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Ring* r = Unwrap(env, info, &argc, argv);
  if (r == nullptr) return nullptr;
  char name[32];
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok)
    return ThrowType(env, "supports(name)");
  struct { const char* name; unsigned op; } table[] = {
      {"read", IORING_OP_READ}, {"write", IORING_OP_WRITE}, {"writev", IORING_OP_WRITEV},
      {"fsync", IORING_OP_FSYNC}, {"fallocate", IORING_OP_FALLOCATE}, {"ftruncate", kOpFtruncate},
  };
  for (auto& e : table)
    if (strcmp(e.name, name) == 0) return MakeBool(env, r->supported[e.op] != 0);
  return ThrowType(env, "unknown operation name");
}

// submit() -> number of SQEs the kernel consumed, in one io_uring_enter.
napi_value Submit(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Ring* r = Unwrap(env, info, &argc, nullptr);
  if (r == nullptr) return nullptr;
  if (r->unsubmitted == 0) return MakeNumber(env, 0);
  StoreRelease(r->sqTail, r->localTail);
  int ret;
  do {
    ret = SysEnter(r->ringFd, r->unsubmitted, 0, 0);
  } while (ret < 0 && errno == EINTR);
  if (ret < 0) return ThrowErrno(env, errno, "io_uring_enter");
  r->enters += 1;
  r->sqesSubmitted += ret;
  r->unsubmitted -= static_cast<unsigned>(ret);
  SetInflight(r, r->inflight + ret);
  return MakeNumber(env, ret);
}

napi_value SqSpace(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Ring* r = Unwrap(env, info, &argc, nullptr);
  if (r == nullptr) return nullptr;
  return MakeNumber(env, r->sqEntries - (r->localTail - LoadAcquire(r->sqHead)));
}

napi_value Stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value thisArg;
  napi_get_cb_info(env, info, &argc, nullptr, &thisArg, nullptr);
  void* data = nullptr;
  if (napi_unwrap(env, thisArg, &data) != napi_ok || data == nullptr) return ThrowType(env, "not a Ring");
  Ring* r = static_cast<Ring*>(data);
  napi_value o;
  napi_create_object(env, &o);
  SetNamed(env, o, "enters", MakeNumber(env, r->enters));
  SetNamed(env, o, "sqes", MakeNumber(env, r->sqesSubmitted));
  SetNamed(env, o, "completions", MakeNumber(env, r->completions));
  SetNamed(env, o, "inflight", MakeNumber(env, static_cast<double>(r->inflight)));
  SetNamed(env, o, "sqEntries", MakeNumber(env, r->sqEntries));
  SetNamed(env, o, "cqEntries", MakeNumber(env, r->cqEntries));
  SetNamed(env, o, "features", MakeNumber(env, r->features));
  SetNamed(env, o, "setupFlags", MakeNumber(env, r->setupFlags));
  SetNamed(env, o, "closed", MakeBool(env, r->closed));
  return o;
}

napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value thisArg;
  napi_get_cb_info(env, info, &argc, nullptr, &thisArg, nullptr);
  void* data = nullptr;
  if (napi_unwrap(env, thisArg, &data) != napi_ok || data == nullptr) return ThrowType(env, "not a Ring");
  TearDown(static_cast<Ring*>(data));
  return Undefined(env);
}

}  // namespace

void InitRing(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"prepWrite", nullptr, PrepWrite, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"prepRead", nullptr, PrepRead, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"prepFsync", nullptr, PrepFsync, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"prepFallocate", nullptr, PrepFallocate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"prepFtruncate", nullptr, PrepFtruncate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"supports", nullptr, Supports, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"submit", nullptr, Submit, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sqSpace", nullptr, SqSpace, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stats", nullptr, Stats, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value ctor;
  napi_define_class(env, "Ring", NAPI_AUTO_LENGTH, New, nullptr, sizeof methods / sizeof methods[0], methods, &ctor);
  napi_set_named_property(env, exports, "Ring", ctor);
}

}  // namespace raftlog

#else  // !__linux__

namespace raftlog {
void InitRing(napi_env, napi_value) {}
}  // namespace raftlog

#endif  // __linux__
