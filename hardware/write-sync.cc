// writeSync(fd, buffers, position, datasync, perBuffer): pwritev until every
// byte is down, then fdatasync when asked, in ONE libuv threadpool job.
// perBuffer makes it one pwrite per buffer instead, for writes whose size
// decides their page-cache folios (the zero fill of preallocation, see
// backends/zero-fill.ts). node:fs does
// the same as two jobs (writev, then fdatasync), and each job's completion
// crosses back to the event loop before the next can start; for a synced
// group that is one loop round trip saved (PosixFs uses this when the addon
// is built). Errors are shaped like node:fs's (code, negative errno,
// syscall), so PosixFs maps them exactly as before.
#include "common.h"

#if defined(__linux__)

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include <sys/uio.h>
#include <unistd.h>

namespace raftlog {
namespace {

struct WriteSyncCall {
  int fd = -1;
  int64_t position = 0;
  bool datasync = false;
  bool perBuffer = false;
  std::vector<iovec> iov;
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  /** Keeps the buffers array (and so each buffer) alive and unmoved until the job completes. */
  napi_ref buffers_ref = nullptr;
  int err = 0;
  const char* syscall = nullptr;
};

void ExecuteWriteSync(napi_env, void* data) {
  auto* call = static_cast<WriteSyncCall*>(data);
  size_t first = 0;
  off_t at = static_cast<off_t>(call->position);
  while (first < call->iov.size()) {
    const int count = call->perBuffer ? 1 : static_cast<int>(std::min<size_t>(call->iov.size() - first, IOV_MAX));
    const ssize_t written = pwritev(call->fd, call->iov.data() + first, count, at);
    if (written < 0) {
      if (errno == EINTR) continue;
      call->err = errno;
      call->syscall = "write";
      return;
    }
    if (written == 0) {
      call->err = EIO;  // no progress: what PosixFs reported for a zero-byte writev
      call->syscall = "write";
      return;
    }
    at += written;
    // A short write continues from the first unwritten byte.
    size_t left = static_cast<size_t>(written);
    while (first < call->iov.size() && left >= call->iov[first].iov_len) {
      left -= call->iov[first].iov_len;
      first++;
    }
    if (left > 0) {
      call->iov[first].iov_base = static_cast<uint8_t*>(call->iov[first].iov_base) + left;
      call->iov[first].iov_len -= left;
    }
  }
  if (call->datasync) {
    int result;
    do {
      result = fdatasync(call->fd);
    } while (result < 0 && errno == EINTR);
    if (result < 0) {
      call->err = errno;
      call->syscall = "fdatasync";
    }
  }
}

void CompleteWriteSync(napi_env env, napi_status status, void* data) {
  auto* call = static_cast<WriteSyncCall*>(data);
  if (status == napi_ok && call->err == 0) {
    napi_resolve_deferred(env, call->deferred, Undefined(env));
  } else {
    const int err = call->err != 0 ? call->err : EIO;
    const char* syscall = call->syscall != nullptr ? call->syscall : "write";
    std::string message = std::string(ErrnoName(err)) + ": " + strerror(err) + ", " + syscall;
    napi_value code, msg, error, errnoValue, sys;
    napi_create_string_utf8(env, ErrnoName(err), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, message.c_str(), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &error);
    napi_create_int32(env, -err, &errnoValue);
    napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
    napi_set_named_property(env, error, "errno", errnoValue);
    napi_set_named_property(env, error, "syscall", sys);
    napi_reject_deferred(env, call->deferred, error);
  }
  napi_delete_reference(env, call->buffers_ref);
  napi_delete_async_work(env, call->work);
  delete call;
}

napi_value WriteSync(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 4) return ThrowType(env, "writeSync(fd, buffers, position, datasync, perBuffer?)");
  uint32_t fd;
  int64_t position;
  bool datasync;
  bool isArray = false;
  if (!GetUint32(argv[0], env, &fd) || fd > INT_MAX) return ThrowType(env, "writeSync: fd must be a descriptor");
  if (!GetInt64(env, argv[2], &position) || position < 0) return ThrowType(env, "writeSync: position must be a non-negative integer");
  if (!GetBool(env, argv[3], &datasync)) return ThrowType(env, "writeSync: datasync must be a boolean");
  bool perBuffer = false;
  if (argc >= 5) {
    napi_valuetype type;
    napi_typeof(env, argv[4], &type);
    if (type != napi_undefined && !GetBool(env, argv[4], &perBuffer)) return ThrowType(env, "writeSync: perBuffer must be a boolean");
  }
  if (napi_is_array(env, argv[1], &isArray) != napi_ok || !isArray) return ThrowType(env, "writeSync: buffers must be an array");
  uint32_t count;
  napi_get_array_length(env, argv[1], &count);
  auto* call = new WriteSyncCall();
  call->fd = static_cast<int>(fd);
  call->position = position;
  call->datasync = datasync;
  call->perBuffer = perBuffer;
  call->iov.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    uint8_t* bytes;
    size_t length;
    if (napi_get_element(env, argv[1], i, &element) != napi_ok || !GetBytes(env, element, &bytes, &length)) {
      delete call;
      return ThrowType(env, "writeSync: every buffer must be a Uint8Array");
    }
    if (length > 0) call->iov.push_back(iovec{bytes, length});
  }
  napi_value promise, name;
  napi_create_string_utf8(env, "raftlog.writeSync", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &call->deferred, &promise) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &call->buffers_ref) != napi_ok ||
      napi_create_async_work(env, nullptr, name, ExecuteWriteSync, CompleteWriteSync, call, &call->work) != napi_ok ||
      napi_queue_async_work(env, call->work) != napi_ok) {
    if (call->buffers_ref != nullptr) napi_delete_reference(env, call->buffers_ref);
    if (call->work != nullptr) napi_delete_async_work(env, call->work);
    delete call;
    return ThrowType(env, "writeSync: could not queue the work");
  }
  return promise;
}

}  // namespace

void InitWriteSync(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "writeSync", NAPI_AUTO_LENGTH, WriteSync, nullptr, &fn);
  SetNamed(env, exports, "writeSync", fn);
}

}  // namespace raftlog

#else  // !__linux__: PosixFs keeps node:fs there

namespace raftlog {
void InitWriteSync(napi_env, napi_value) {}
}  // namespace raftlog

#endif
