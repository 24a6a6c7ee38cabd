#include "common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace raftlog {

const char* ErrnoName(int err) {
  // strerrorname_np is glibc 2.32+; musl and macOS fall back to "E<number>".
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
#endif
  static thread_local char buf[32];
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

napi_value ThrowErrno(napi_env env, int err, const char* syscall) {
  std::string message = std::string(syscall) + ": " + strerror(err) + " (" + ErrnoName(err) + ")";
  napi_value code, msg, error;
  napi_create_string_utf8(env, ErrnoName(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message.c_str(), NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_value errnoValue, sys;
  napi_create_int32(env, -err, &errnoValue);  // negative, like Node's uv errors
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "errno", errnoValue);
  napi_set_named_property(env, error, "syscall", sys);
  napi_throw(env, error);
  return nullptr;
}

napi_value ThrowType(napi_env env, const char* message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return nullptr;
}

bool GetInt64(napi_env env, napi_value v, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d))) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

bool GetUint32(napi_value v, napi_env env, uint32_t* out) {
  int64_t x;
  if (!GetInt64(env, v, &x) || x < 0 || x > 0xffffffffLL) return false;
  *out = static_cast<uint32_t>(x);
  return true;
}

bool GetBool(napi_env env, napi_value v, bool* out) {
  return napi_get_value_bool(env, v, out) == napi_ok;
}

bool GetBytes(napi_env env, napi_value v, uint8_t** data, size_t* length) {
  bool is;
  void* ptr = nullptr;
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, v, &ptr, length) != napi_ok) return false;
    *data = static_cast<uint8_t*>(ptr);
    return true;
  }
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t count, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &count, &ptr, &ab, &offset) != napi_ok) return false;
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    *data = static_cast<uint8_t*>(ptr);
    *length = count * elem;
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t offset;
    if (napi_get_dataview_info(env, v, length, &ptr, &ab, &offset) != napi_ok) return false;
    *data = static_cast<uint8_t*>(ptr);
    return true;
  }
  return false;
}

napi_value Undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value MakeNumber(napi_env env, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  return n;
}

napi_value MakeBool(napi_env env, bool v) {
  napi_value b;
  napi_get_boolean(env, v, &b);
  return b;
}

void SetNamed(napi_env env, napi_value obj, const char* name, napi_value v) {
  napi_set_named_property(env, obj, name, v);
}

}  // namespace raftlog

NAPI_MODULE_INIT() {
  raftlog::InitRing(env, exports);
  raftlog::InitMemory(env, exports);
  raftlog::InitCipher(env, exports);
  raftlog::InitCrc32c(env, exports);
  raftlog::InitLz4(env, exports);
  raftlog::InitWriteSync(env, exports);
  return exports;
}
