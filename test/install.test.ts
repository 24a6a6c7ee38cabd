/**
 * `npm install raftlog` works without a compiler and without approvals
 * (issue 17): packs this checkout (`npm pack`, through scripts/prepack.mjs),
 * installs the tarball into fresh projects three ways (normal; no compiler,
 * CXX=false CC=false, under --strict-allow-scripts; --ignore-scripts) and
 * runs test/support/smoke.ts's program on PosixFs in each, plus UringFs where
 * this machine runs io_uring, which proves the prebuilt addon loads. Then the
 * README's TypeScript example compiles in strict mode against the installed
 * package.
 *
 * Off the network: each project gets a lockfile made from this repository's
 * (the tarball's dependencies at the versions `npm ci` put in the npm cache)
 * and installs with `npm ci --offline`. Where a dependency is not in the
 * cache, the test skips and says so.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { UringFs } from '../backends/uring.js';
import { loadNative } from '../hardware/native.js';
import { smokeProgram, type SmokeOutcome } from './support/smoke.js';

/** The checkout: this file runs from dist/test/. */
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const uringReason = UringFs.unavailableReason();

interface Mode {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The project's allowScripts policy; strict mode fails on any install script it does not cover. */
  readonly allowScripts?: Readonly<Record<string, boolean>>;
}

const MODES: readonly Mode[] = [
  { name: 'normal', args: [], env: {} },
  {
    name: 'no compiler (CXX=false CC=false), --strict-allow-scripts',
    args: ['--strict-allow-scripts'],
    env: { CXX: 'false', CC: 'false' },
    // protobufjs's postinstall only prints a version-scheme warning. Denying
    // it covers it, so anything strict mode still rejects is raftlog's own.
    allowScripts: { protobufjs: false },
  },
  { name: '--ignore-scripts', args: ['--ignore-scripts'], env: {} },
];

function npm(args: readonly string[], cwd: string, env: Readonly<Record<string, string>> = {}): SpawnSyncReturns<string> {
  return spawnSync(NPM, args, {
    cwd,
    env: { ...process.env, ...env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' },
    encoding: 'utf8',
    timeout: 600_000,
  });
}

function output(run: SpawnSyncReturns<string>): string {
  return `exit ${run.status ?? run.signal}\n${run.stdout}\n${run.stderr}`;
}

/**
 * package-lock.json of a project depending on the tarball (`file` is its path,
 * `name` its name in the project): raftlog, plus the repository's own
 * production entries, which `npm ci` put in the npm cache.
 */
function projectLock(file: string, name: string, manifest: Record<string, unknown>): string {
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const spec = `file:${name}`;
  const packages: Record<string, unknown> = {
    '': { name: 'raftlog-install-smoke', dependencies: { raftlog: spec } },
    'node_modules/raftlog': {
      version: manifest['version'],
      resolved: spec,
      integrity: `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`,
      license: manifest['license'],
      dependencies: manifest['dependencies'],
      peerDependencies: manifest['peerDependencies'],
      peerDependenciesMeta: manifest['peerDependenciesMeta'],
      engines: manifest['engines'],
      bin: manifest['bin'],
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path !== '' && entry.dev !== true) packages[path] = entry;
  }
  return `${JSON.stringify({ name: 'raftlog-install-smoke', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`;
}

/** The README's first TypeScript example, with its placeholders declared. */
function readmeExample(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(example !== undefined, 'README.md has a ```ts example');
  return `declare const regionId: number;\ndeclare const data: Uint8Array;\n${example}`;
}

describe('the packed tarball installs and runs', () => {
  const work = mkdtempSync(join(tmpdir(), 'raftlog-install-'));
  let tarball: string | undefined;
  let packFailure: string | undefined;
  after(() => rmSync(work, { recursive: true, force: true }));

  before(() => {
    // The host's prebuild only (a cross-compiled one cannot be run here), and
    // no second tsc: `npm test` just compiled dist/, which other tests are loading.
    const pack = npm(['pack', '--pack-destination', work], REPO, { RAFTLOG_PREBUILD_ARCHS: arch(), RAFTLOG_PACK_SKIP_TSC: '1' });
    const name = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (pack.status !== 0 || name === undefined) packFailure = output(pack);
    else tarball = join(work, name);
  });

  it('npm pack ships dist, the addon sources, a prebuild for this machine, LICENSE and CHANGELOG, and no lifecycle script', () => {
    assert.ok(tarball !== undefined, `npm pack failed: ${packFailure}`);
    const list = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    const files = list.stdout.split('\n').filter(Boolean);
    for (const expected of [
      'package/LICENSE',
      'package/CHANGELOG.md',
      'package/README.md',
      'package/dist/index.js',
      'package/dist/cli/main.js',
      'package/hardware/binding.gyp',
    ]) {
      assert.ok(files.includes(expected), `${expected} is in the tarball`);
    }
    if (process.platform === 'linux' && loadNative().ok) {
      // This checkout built the addon, so prepack had one to ship.
      assert.ok(
        files.some((f) => f.startsWith(`package/hardware/prebuilds/linux-${arch()}/`) && f.endsWith('.node')),
        'a prebuild for this machine',
      );
    }
    // A root binding.gyp would get an implicit `install: node-gyp rebuild`.
    assert.ok(!files.includes('package/binding.gyp'));
    assert.ok(
      !files.some((f) => f.startsWith('package/dist/test/') || f.startsWith('package/dist/bench/') || f.startsWith('package/bench/')),
    );
    const manifest = spawnSync('tar', ['xzf', tarball, '-O', 'package/package.json'], { encoding: 'utf8' });
    const scripts = (JSON.parse(manifest.stdout) as { scripts?: Record<string, string> }).scripts ?? {};
    assert.deepEqual(Object.keys(scripts), ['build:native'], 'no lifecycle script, only the documented build command');
    assert.ok(!existsSync(join(REPO, '.package.json.prepack')), 'postpack restored package.json');
    assert.ok('prepare' in (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: object }).scripts);
  });

  for (const mode of MODES) {
    it(`installs with ${mode.name} and runs on PosixFs${uringReason === undefined ? ' and UringFs' : ''}`, (t) => {
      assert.ok(tarball !== undefined, `npm pack failed: ${packFailure}`);
      const project = join(work, mode.name.replace(/[^a-z]+/gi, '-'));
      mkdirSync(project);
      const local = join(project, 'raftlog.tgz');
      copyFileSync(tarball, local);
      const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({
          name: 'raftlog-install-smoke',
          private: true,
          type: 'module',
          dependencies: { raftlog: 'file:raftlog.tgz' },
          ...(mode.allowScripts === undefined ? {} : { allowScripts: mode.allowScripts }),
        }),
      );
      writeFileSync(join(project, 'package-lock.json'), projectLock(local, 'raftlog.tgz', manifest));

      const began = performance.now();
      const install = npm(['ci', '--offline', ...mode.args], project, mode.env);
      const seconds = (performance.now() - began) / 1000;
      if (install.status !== 0 && /ENOTCACHED/.test(install.stderr)) {
        t.skip(
          `a dependency of the tarball is not in the npm cache (run \`npm ci\` online once): ${/request to (\S+)/.exec(install.stderr)?.[1] ?? 'ENOTCACHED'}`,
        );
        return;
      }
      assert.equal(install.status, 0, output(install));
      t.diagnostic(`npm ci ${mode.args.join(' ')}: ${seconds.toFixed(1)} s`);
      const installed = join(project, 'node_modules', 'raftlog');
      assert.ok(!existsSync(join(installed, 'hardware', 'build')), 'nothing was compiled at install');
      assert.ok(!existsSync(join(project, 'node_modules', 'memfs')), 'memfs (an optional peer) is not installed');

      writeFileSync(join(project, 'smoke.mjs'), smokeProgram('raftlog'));
      const backends = uringReason === undefined ? 'posix,uring' : 'posix';
      const run = spawnSync(process.execPath, ['smoke.mjs'], {
        cwd: project,
        env: { ...process.env, RAFTLOG_SMOKE_DIR: join(project, 'data'), RAFTLOG_SMOKE_BACKENDS: backends },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(run.status, 0, output(run));
      const out = JSON.parse(run.stdout.trim()) as Record<string, SmokeOutcome>;
      assert.deepEqual(out['posix'], { read: 'entry on posix' });
      if (uringReason === undefined) assert.deepEqual(out['uring'], { read: 'entry on uring' }, 'UringFs on the prebuilt addon');
    });
  }

  it("compiles the README's TypeScript example in strict mode against the installed package", () => {
    const project = join(work, 'normal');
    if (!existsSync(join(project, 'node_modules', 'raftlog'))) {
      assert.fail('the normal install did not happen (see above)');
    }
    writeFileSync(join(project, 'example.ts'), readmeExample());
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          lib: ['ES2022', 'ESNext.Disposable'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          skipLibCheck: false,
          // @types/node from this checkout: the example project has no dev dependencies.
          typeRoots: [join(REPO, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['example.ts'],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
      cwd: project,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(tsc.status, 0, output(tsc));
  });
});
