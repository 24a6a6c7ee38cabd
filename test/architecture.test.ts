/**
 * The dependency arrows, enforced here so a stray import fails CI:
 *
 *   index.ts (package entry) ──► src/ (engine), backends/
 *   cli/ (the command line)  ──► src/, backends/, hardware/
 *   backends/, hardware/     ──► src/errors.ts, src/filesystem.ts (the seam) only
 *   src/                     ──► nothing outside src/ but its codec packages
 *
 * The engine reaches storage only through the FileSystem seam: nothing under
 * src/ imports node:fs, a backend, the native addon or the CLI.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Parallel replay runs on worker threads, which reach no storage (the main thread reads through the FileSystem).
const ALLOWED_PACKAGES = new Set(['protobufjs', 'lz4-napi', '@node-rs/crc32', 'node:worker_threads']);
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

function importsOf(text: string): string[] {
  return [...text.matchAll(IMPORT)].map((m) => (m[1] ?? m[2])!);
}

describe('architecture', () => {
  it('the engine imports only its own modules its three codec packages, and node:worker_threads', async () => {
    // The Prometheus adapter loads its optional dependency; nothing else may.
    const files = (await sourceFiles(join(ROOT, 'src'))).filter((f) => relative(join(ROOT, 'src'), f) !== 'prometheus.ts');
    assert.ok(files.length > 10, `found ${files.length} engine files`);
    const violations: string[] = [];
    for (const file of files) {
      for (const target of importsOf(await readFile(file, 'utf8'))) {
        const ok = target.startsWith('.') ? relative(ROOT, join(file, '..', target)).startsWith('src/') : ALLOWED_PACKAGES.has(target);
        if (!ok) violations.push(`${relative(ROOT, file)} imports ${target}`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('backends and the addon loader reach into the engine only for the FileSystem seam and its errors, never the CLI', async () => {
    const seam = new Set(['src/filesystem.js', 'src/errors.js']);
    const files = [...(await sourceFiles(join(ROOT, 'backends'))), ...(await sourceFiles(join(ROOT, 'hardware')))];
    assert.ok(files.length > 10, `found ${files.length} backend files`);
    const violations: string[] = [];
    for (const file of files) {
      for (const target of importsOf(await readFile(file, 'utf8'))) {
        if (!target.startsWith('.')) continue;
        const to = relative(ROOT, join(file, '..', target));
        if ((to.startsWith('src/') && !seam.has(to)) || to.startsWith('cli/') || to === 'index.js')
          violations.push(`${relative(ROOT, file)} imports ${target}`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('only the package entry point and the CLI join the engine and the backends', async () => {
    const joiners: string[] = [];
    for (const file of [join(ROOT, 'index.ts'), ...(await sourceFiles(join(ROOT, 'cli')))]) {
      const targets = importsOf(await readFile(file, 'utf8')).map((t) => relative(ROOT, join(file, '..', t)));
      if (targets.some((t) => t.startsWith('src/')) && targets.some((t) => t.startsWith('backends/'))) joiners.push(relative(ROOT, file));
    }
    assert.ok(joiners.includes('index.ts'), 'index.ts re-exports the engine and the backends');
    const entry = importsOf(await readFile(join(ROOT, 'index.ts'), 'utf8'));
    // And the addon loader, for the native batch checksum it installs into the engine's codec.
    const allowed = (t: string): boolean => t.startsWith('./src/') || t.startsWith('./backends/') || t === './hardware/native.js';
    assert.ok(entry.every(allowed), `index.ts imports ${entry.join(', ')}`);
  });

  it('the rule catches what it should', () => {
    assert.deepEqual(importsOf("import { open } from 'node:fs/promises';\nexport { x } from '../backends/posix.js';"), [
      'node:fs/promises',
      '../backends/posix.js',
    ]);
    assert.deepEqual(importsOf("const m = await import('node:fs');"), ['node:fs']);
  });
});
