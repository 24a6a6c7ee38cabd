/**
 * The README's examples that import from 'raftlog' compile in strict
 * TypeScript against the package's sources, so the documented API cannot
 * drift from the real one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Fenced `ts` blocks of the README that import the package. */
function packageExamples(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((code) => code.includes("from 'raftlog'"));
}

describe('README', () => {
  it('examples that import raftlog compile in strict TypeScript', () => {
    const examples = packageExamples();
    assert.ok(examples.length >= 2, 'the usage example and the RaftStorage example');
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-readme-'));
    try {
      const file = join(dir, 'readme-example.mts');
      // The examples share one scope (the second uses the first's engine);
      // `regionId` and `data` are the reader's own.
      const source = [
        'declare const regionId: number;',
        'declare const data: Uint8Array;',
        ...examples.map((code) => code.replaceAll("from 'raftlog'", `from ${JSON.stringify(join(ROOT, 'index.js'))}`)),
        'export {};',
      ].join('\n');
      writeFileSync(file, source);
      const program = ts.createProgram([file], {
        strict: true,
        noEmit: true,
        target: ts.ScriptTarget.ES2022,
        lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules/@types')],
        skipLibCheck: true,
        esModuleInterop: true,
      });
      const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file === undefined || d.file.fileName === file);
      const text = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      assert.deepEqual(text, [], `${source}\n\n${text.join('\n')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
