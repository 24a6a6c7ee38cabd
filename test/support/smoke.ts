/**
 * A small program that uses raftlog the way an application would, run in a
 * child process: by test/native-optional.test.ts against this checkout with
 * the addon made unloadable, and by test/install.test.ts against the packed
 * tarball installed into a fresh project. For each backend in
 * RAFTLOG_SMOKE_BACKENDS it writes an entry with sync, closes, reopens (a
 * crash image, for FaultFs) and reads it back; it prints one JSON line,
 * backend -> { read } or { code, message }.
 */

/** Backends the program knows. */
export type SmokeBackend = 'posix' | 'memfs' | 'fault' | 'encrypted' | 'uring' | 'pmem';

export type SmokeOutcome = { readonly read: string } | { readonly code: string; readonly message: string };

/** JavaScript source (ESM) importing raftlog from `specifier`; writes under RAFTLOG_SMOKE_DIR. */
export function smokeProgram(specifier: string): string {
  return `
import { join } from 'node:path';
import { Engine, EncryptedFs, FaultFs, LogBatch, MemFs, PmemFs, PosixFs, UringFs } from ${JSON.stringify(specifier)};

const dir = process.env.RAFTLOG_SMOKE_DIR;
const backends = process.env.RAFTLOG_SMOKE_BACKENDS.split(',');
const masterKey = new Uint8Array(32).fill(7);

async function write(fs, text) {
  const engine = new Engine({ fs });
  await engine.open();
  try {
    const batch = new LogBatch();
    batch.addEntries(1, [{ index: 1, term: 1, data: new TextEncoder().encode(text) }]);
    await engine.write(batch, { sync: true });
  } finally {
    await engine.close();
  }
}

async function read(fs) {
  const engine = new Engine({ fs });
  await engine.open();
  try {
    const [entry] = await engine.fetchEntriesTo(1, 1, 2);
    return new TextDecoder().decode(entry.data);
  } finally {
    await engine.close();
  }
}

const runs = {
  posix: async (text) => { await write(new PosixFs(join(dir, 'posix')), text); return read(new PosixFs(join(dir, 'posix'))); },
  memfs: async (text) => { const fs = new MemFs(); await write(fs, text); return read(fs); },
  fault: async (text) => { const fs = new FaultFs(new MemFs(), { seed: 1 }); await write(fs, text); return read(await fs.crash('keepPrefix')); },
  encrypted: async (text) => {
    const at = join(dir, 'encrypted');
    await write(new EncryptedFs(new PosixFs(at), { masterKey }), text);
    return read(new EncryptedFs(new PosixFs(at), { masterKey }));
  },
  uring: async (text) => { await write(new UringFs(join(dir, 'uring')), text); return read(new UringFs(join(dir, 'uring'))); },
  pmem: async (text) => { await write(new PmemFs(join(dir, 'pmem')), text); return read(new PmemFs(join(dir, 'pmem'))); },
};

const out = {};
for (const backend of backends) {
  try {
    out[backend] = { read: await runs[backend]('entry on ' + backend) };
  } catch (error) {
    out[backend] = { code: error.code ?? 'THROWN', message: error.message };
  }
}
console.log(JSON.stringify(out));
`;
}
