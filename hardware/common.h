// Shared helpers for the raftlog N-API addon. Plain C N-API (no
// node-addon-api) so the addon builds from Node's own headers alone.
#pragma once

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>

namespace raftlog {

// Throws a JS Error shaped like Node's system errors (`code` = errno name,
// `errno`, `syscall`) so raftlog's fromSystemError maps it without special
// cases. Always returns nullptr so callers can `return ThrowErrno(...)`.
napi_value ThrowErrno(napi_env env, int err, const char* syscall);
napi_value ThrowType(napi_env env, const char* message);

// Name of an errno value ("EIO"), or "E<number>" when unknown.
const char* ErrnoName(int err);

bool GetInt64(napi_env env, napi_value v, int64_t* out);
bool GetUint32(napi_value v, napi_env env, uint32_t* out);
bool GetBool(napi_env env, napi_value v, bool* out);

// Raw bytes of an ArrayBuffer, TypedArray, DataView or Buffer.
bool GetBytes(napi_env env, napi_value v, uint8_t** data, size_t* length);

napi_value Undefined(napi_env env);
napi_value MakeNumber(napi_env env, double v);
napi_value MakeBool(napi_env env, bool v);
void SetNamed(napi_env env, napi_value obj, const char* name, napi_value v);

void InitRing(napi_env env, napi_value exports);
void InitMemory(napi_env env, napi_value exports);
void InitCipher(napi_env env, napi_value exports);
void InitCrc32c(napi_env env, napi_value exports);
void InitLz4(napi_env env, napi_value exports);
void InitWriteSync(napi_env env, napi_value exports);

}  // namespace raftlog
