/**
 * The engine reaches storage only through the FileSystem seam: nothing under
 * src/ may import node:fs,
 * a backend, or the native addon. Enforced here so a stray import fails CI.
 * The CLI and src/index.ts are the composition roots and are exempt.
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
  it('the engine imports only its own modules, its three codec packages, and node:worker_threads', async () => {
    // The CLI and the package index compose backends with the engine, and the
    // Prometheus adapter loads its optional dependency; nothing else may.
    const composition = (f: string): boolean => /^(cli[/\\]|index\.ts$|prometheus\.ts$)/.test(relative(join(ROOT, 'src'), f));
    const files = (await sourceFiles(join(ROOT, 'src'))).filter((f) => !composition(f));
    assert.ok(files.length > 10, `found ${files.length} engine files`);
    const violations: string[] = [];
    for (const file of files) {
      for (const target of importsOf(await readFile(file, 'utf8'))) {
        const ok = target.startsWith('.') ? !/\/(backends|hardware)\//.test(`/${relative(ROOT, join(file, '..', target))}`) : ALLOWED_PACKAGES.has(target);
        if (!ok) violations.push(`${relative(ROOT, file)} imports ${target}`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('the rule catches what it should', () => {
    assert.deepEqual(importsOf("import { open } from 'node:fs/promises';\nexport { x } from '../backends/posix.js';"), ['node:fs/promises', '../backends/posix.js']);
    assert.deepEqual(importsOf("const m = await import('node:fs');"), ['node:fs']);
  });
});
