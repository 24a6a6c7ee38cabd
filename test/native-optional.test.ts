/**
 * The addon is optional (issue 17): where it is missing (no prebuild for the
 * platform, no compiler, a failed build) `import 'raftlog'` works, PosixFs,
 * MemFs, FaultFs and EncryptedFs (on node:crypto) do their job, and UringFs
 * and PmemFs fail at construction with UNSUPPORTED saying why and how to get
 * the addon. A child process stands in for such a machine: the loader
 * honours RAFTLOG_NATIVE_PATH, and pointing it nowhere is a missing addon.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { smokeProgram, type SmokeOutcome } from './support/smoke.js';

const NO_ADDON = { RAFTLOG_NATIVE_PATH: '/nonexistent/raftlog_native.node' };

function runModule(source: string, env: Record<string, string>): string {
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(child.status, 0, `child failed: ${child.stderr}`);
  return child.stdout.trim();
}

describe('without the native addon', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-no-addon-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('PosixFs, MemFs, FaultFs and EncryptedFs write, sync, reopen and read back; UringFs and PmemFs say UNSUPPORTED and how to get them', () => {
    const index = new URL('../index.js', import.meta.url).href;
    const stdout = runModule(smokeProgram(index), {
      ...NO_ADDON,
      RAFTLOG_SMOKE_DIR: dir,
      RAFTLOG_SMOKE_BACKENDS: 'posix,memfs,fault,encrypted,uring,pmem',
    });
    const out = JSON.parse(stdout) as Record<string, SmokeOutcome>;
    for (const backend of ['posix', 'memfs', 'fault', 'encrypted']) {
      assert.deepEqual(out[backend], { read: `entry on ${backend}` }, `${backend}: ${JSON.stringify(out[backend])}`);
    }
    for (const [backend, name] of [
      ['uring', 'UringFs'],
      ['pmem', 'PmemFs'],
    ] as const) {
      const outcome = out[backend];
      assert.ok(outcome !== undefined && 'code' in outcome, `${backend} must fail: ${JSON.stringify(outcome)}`);
      assert.equal(outcome.code, 'UNSUPPORTED');
      assert.match(outcome.message, new RegExp(`^${name} needs the native addon: the raftlog native addon was not built`));
      assert.match(outcome.message, /npm run build:native/, 'the message says how to get the addon');
    }
  });

  it('EncryptedFs falls back to node:crypto for its data cipher', () => {
    const cipher = new URL('../backends/encryption/cipher.js', import.meta.url).href;
    const native = new URL('../hardware/native.js', import.meta.url).href;
    const stdout = runModule(
      `const c = await import(${JSON.stringify(cipher)});
       const n = await import(${JSON.stringify(native)});
       console.log(JSON.stringify({ native: c.ctrIntoNative !== undefined, offThread: c.ctrIntoOffThread !== undefined,
         fallback: c.ctrInto === c.ctrIntoNodeCrypto, loaded: n.loadNative().ok }));`,
      NO_ADDON,
    );
    assert.deepEqual(JSON.parse(stdout), { native: false, offThread: false, fallback: true, loaded: false });
  });
});
