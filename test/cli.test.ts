/**
 * The `raftlog` command, end to end: each test spawns the built CLI
 * (dist/cli/main.js) the way a user would and checks exit codes and
 * output, on directories written by `raftlog stress` and then damaged on
 * purpose.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PosixFs } from '../backends/posix.js';
import { Engine } from '../src/engine.js';
import { LogBatch } from '../src/log-batch.js';

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../cli/main.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function raftlog(args: string[], options: SpawnSyncOptions = {}): Run {
  const result = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    // A dump of a few seconds of stress is several MiB of JSON; the 1 MiB default would kill the child.
    maxBuffer: 256 << 20,
    env: { ...process.env, RAFTLOG_DEBUG: '' },
    ...options,
  });
  return { status: result.status, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** The failure contract: exactly one line on stderr, no stack trace. */
function assertOneLineError(run: Run, pattern: RegExp): void {
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${run.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at |Error:.*\n/, 'no stack trace');
}

function hashFiles(dir: string): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.raftlog'))
    .sort()) {
    hashes.set(
      name,
      createHash('sha256')
        .update(readFileSync(join(dir, name)))
        .digest('hex'),
    );
  }
  return hashes;
}

function flipByte(file: string, offset: number): void {
  const bytes = readFileSync(file);
  bytes[offset] = bytes[offset]! ^ 0xff;
  writeFileSync(file, bytes);
}

interface DumpJson {
  records: {
    file: string;
    offset: number;
    payloadBytes: number;
    items: { kind: string; region: number; first?: number; last?: number; entries?: { index: number }[] }[];
  }[];
  files: { name: string; validBytes: number; sizeBytes: number }[];
  regions: { region: number; firstIndex: number | null; lastIndex: number | null; entries: number; keys: number }[];
  problems: { file: string; offset: number }[];
  totals: { records: number; recordsShown: number; entries: number; regions: number };
}

function dumpJson(dir: string, extra: string[] = []): DumpJson {
  const run = raftlog(['dump', dir, '--json', ...extra]);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as DumpJson;
}

/** The empty record the stress run's clean close appends (docs/format.md, seal record). */
const SEAL_RECORDS = 1;

let root: string;
/** Written once by `raftlog stress`, never modified: tests copy it before damaging. */
let pristine: string;
let stressJson: Record<string, unknown> & {
  ops: number;
  entries: number;
  latencyMicros: Record<string, number>;
  gc: { files: number; compactedEntries: number };
};

function copyOf(name: string): string {
  const dir = join(root, name);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'raftlog-cli-'));
  pristine = join(root, 'pristine');
  // Small files so the log spans several: damage in an older file is a distinct case.
  // --keep is past what 1.5 s can write, so no compaction item appears however fast the
  // machine is: every record is one region's entries, which the tests below rely on.
  const run = raftlog([
    'stress',
    '--dir',
    pristine,
    '--duration',
    '1.5',
    '--regions',
    '20',
    '--writers',
    '4',
    '--target-file-size',
    '256k',
    '--keep',
    '100000000',
    '--json',
  ]);
  assert.equal(run.status, 0, run.stderr);
  stressJson = JSON.parse(run.stdout) as typeof stressJson;
  // stderr is not a TTY here: progress comes as a line a second instead of a bar.
  assert.match(run.stderr, /^stress: 1\.\d\/1\.5s .* ops\/s .* MB\/s/m);
});

after(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('raftlog stress', () => {
  it('writes a real log and reports consistent figures as JSON', () => {
    const r = stressJson;
    assert.ok(r.ops > 0);
    assert.equal(r.entries, r.ops * 4, '4 entries per batch, 1 region per batch');
    const lat = r.latencyMicros;
    assert.ok(lat['p50']! > 0 && lat['p50']! <= lat['p99']! && lat['p99']! <= lat['max']!, JSON.stringify(lat));
    assert.ok((r['groups'] as number) > 0 && (r['groups'] as number) <= r.ops);
    assert.equal(r['syncs'], r['groups'], 'every group synced (--sync is the default)');
    assert.equal(r.gc.compactedEntries, 0, 'nothing compacted: --keep is out of reach');
    assert.ok(r.gc.files >= 2, `the 256 KiB target size rotated files: ${r.gc.files}`);
    assert.equal(readdirSync(pristine).filter((n) => n.endsWith('.raftlog')).length, r.gc.files);
    assert.ok((r['bytesWritten'] as number) > r.entries * 1024);
  });

  it('prints a table, compacts to --keep, and reuses its own directory', () => {
    const dir = join(root, 'table');
    const first = raftlog([
      'stress',
      '--dir',
      dir,
      '--duration',
      '1',
      '--regions',
      '4',
      '--writers',
      '2',
      '--keep',
      '16',
      '--no-progress',
      '--no-sync',
    ]);
    assert.equal(first.status, 0, first.stderr);
    for (const label of [
      'ops/s',
      'entries/s',
      'MB/s written',
      'latency p50',
      'latency p99.9',
      'latency max',
      'groups',
      'syncs',
      'avg group size',
      'bytes written',
      'gc: log files',
      'memtable bytes/entry',
    ]) {
      assert.match(first.stdout, new RegExp(`^${label.replace(/[./]/g, '\\$&')}\\s`, 'm'), label);
    }
    assert.match(first.stdout, /no sync/);
    assert.equal(first.stderr, '', 'no progress with --no-progress');
    const summary = dumpJson(dir, ['--summary']);
    for (const region of summary.regions)
      assert.ok(region.entries <= 16 + 16, `region ${region.region} keeps about 16 entries: ${region.entries}`);
    assert.equal(summary.regions.length, 4);
    // A raftlog directory is emptied and reused.
    const second = raftlog(['stress', '--dir', dir, '--duration', '0.3', '--regions', '4', '--writers', '2', '--no-progress', '--json']);
    assert.equal(second.status, 0, second.stderr);
  });

  it('purges on a timer: files are removed or recycled, and the directory still checks clean', () => {
    const dir = join(root, 'gc');
    const run = raftlog([
      'stress',
      '--dir',
      dir,
      '--duration',
      '1.5',
      '--regions',
      '8',
      '--writers',
      '2',
      '--keep',
      '16',
      '--target-file-size',
      '64k',
      '--purge-interval',
      '0.25',
      '--json',
    ]);
    assert.equal(run.status, 0, run.stderr);
    const gc = (JSON.parse(run.stdout) as { gc: { purgeCalls: number; filesRemoved: number; filesRecycled: number; files: number } }).gc;
    assert.ok(gc.purgeCalls >= 2, `purges ran: ${gc.purgeCalls}`);
    assert.ok(gc.filesRemoved + gc.filesRecycled > 0, JSON.stringify(gc));
    assert.equal(readdirSync(dir).filter((n) => /\.(raftlog|rewrite)$/.test(n)).length, gc.files);
    const check = raftlog(['check', dir]);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    // Recycled files are raftlog's own: a new run reuses the directory.
    assert.equal(raftlog(['stress', '--dir', dir, '--duration', '0.3', '--regions', '2', '--writers', '1', '--json']).status, 0);
  });

  it('refuses a directory holding files it did not write, and leaves them alone', () => {
    const dir = join(root, 'foreign');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const run = raftlog(['stress', '--dir', dir, '--duration', '0.5']);
    assert.equal(run.status, 2);
    assertOneLineError(run, /refusing to use .*notes\.txt/);
    assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'mine');
  });

  it('rejects bad options with exit 2 and a one-line error', () => {
    assertOneLineError(raftlog(['stress', '--regions', '0']), /--regions/);
    assert.equal(raftlog(['stress', '--regions', '0']).status, 2);
    const writers = raftlog(['stress', '--dir', join(root, 'w'), '--regions', '2', '--writers', '4', '--duration', '1']);
    assert.equal(writers.status, 2);
    assertOneLineError(writers, /--writers \(4\) must not exceed --regions \(2\)/);
    assert.equal(raftlog(['stress', '--backend', 'nfs']).status, 2);
    assert.equal(raftlog(['frobnicate']).status, 2);
  });

  it('runs on the mem backend, and says so', () => {
    const run = raftlog(['stress', '--backend', 'mem', '--duration', '0.5', '--regions', '8', '--writers', '2', '--json']);
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { ops: number; elapsedSeconds: number; config: { backend: string } };
    assert.equal(result.config.backend, 'mem');
    assert.ok(result.ops > 0);
    assert.ok(result.elapsedSeconds < 5, `a mem run ends on time: ${result.elapsedSeconds}s`);
    assert.match(run.stderr, /backend mem keeps the log in memory/);
  });

  it('runs encrypted with an ephemeral key', () => {
    const dir = join(root, 'encrypted');
    const run = raftlog(['stress', '--dir', dir, '--encrypt', '--duration', '0.5', '--regions', '8', '--writers', '2', '--json']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /master key is random and never stored/);
    assert.match((JSON.parse(run.stdout) as { config: { description: string } }).config.description, /^encrypted:posix:/);
    // The CLI cannot read it back, and says why in one line.
    const check = raftlog(['check', dir]);
    assert.equal(check.status, 2);
    assertOneLineError(check, /encrypted/);
  });

  it('names an unavailable backend in one line, before touching the directory', () => {
    const dir = join(root, 'no-uring');
    // The addon's loader honours RAFTLOG_NATIVE_PATH: pointing it nowhere is a machine without the addon.
    const run = raftlog(['stress', '--backend', 'uring', '--dir', dir, '--duration', '0.5'], {
      env: { ...process.env, RAFTLOG_DEBUG: '', RAFTLOG_NATIVE_PATH: join(root, 'no-such-addon.node') },
    });
    assert.equal(run.status, 1);
    assertOneLineError(run, /^raftlog stress: backend uring is not available: .*native addon/);
    assert.equal(existsSync(dir), false);
  });

  it('writes through PmemFs, and dump/check read its format', async (t) => {
    const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'raftlog-cli-pmem-'));
    try {
      const run = raftlog([
        'stress',
        '--backend',
        'pmem',
        '--dir',
        dir,
        '--duration',
        '0.5',
        '--regions',
        '8',
        '--writers',
        '2',
        '--target-file-size',
        '1m',
        '--json',
      ]);
      if (run.status === 1 && /backend pmem is not available/.test(run.stderr)) {
        t.skip(run.stderr.trim());
        return;
      }
      assert.equal(run.status, 0, run.stderr);
      const stress = JSON.parse(run.stdout) as { ops: number; config: { description: string } };
      assert.match(stress.config.description, /^pmem/);
      const check = JSON.parse(raftlog(['check', dir, '--json']).stdout) as { status: string; records: number };
      assert.equal(check.status, 'clean');
      assert.equal(check.records, stress.ops + SEAL_RECORDS);
      assert.equal(dumpJson(dir).totals.records, stress.ops + SEAL_RECORDS);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('raftlog dump', () => {
  it('lists every record, file and region of a stress directory as JSON', () => {
    const dump = dumpJson(pristine);
    assert.equal(dump.totals.records, stressJson.ops + SEAL_RECORDS, 'one record per op, and the seal of the clean close');
    assert.equal(dump.totals.entries, stressJson.entries);
    assert.equal(dump.records.length, dump.totals.records);
    assert.equal(dump.files.length, stressJson.gc.files);
    assert.equal(dump.regions.length, 20);
    assert.deepEqual(dump.problems, []);
    for (const region of dump.regions) {
      assert.equal(region.entries, region.lastIndex! - region.firstIndex! + 1, `region ${region.region} is contiguous`);
    }
    const first = dump.records[0]!;
    assert.equal(first.offset, 32, 'first record right after the 32-byte file header');
    assert.equal(first.items[0]!.kind, 'entries');
  });

  it('filters by region and by file, and prints entries', () => {
    const byRegion = dumpJson(pristine, ['--region', '3', '--entries']);
    assert.ok(byRegion.records.length > 0);
    for (const record of byRegion.records) {
      for (const item of record.items) {
        assert.equal(item.region, 3);
        assert.deepEqual(
          item.entries!.map((e) => e.index),
          [item.first!, item.first! + 1, item.first! + 2, item.first! + 3],
        );
      }
    }
    assert.deepEqual(
      byRegion.regions.map((r) => r.region),
      [3],
    );
    const byFile = dumpJson(pristine, ['--file', '2']);
    assert.ok(byFile.records.length > 0);
    assert.ok(byFile.records.every((r) => r.file === '0000000000000002.raftlog'));
    const text = raftlog(['dump', pristine, '--limit', '2']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^0000000000000001\.raftlog:\n {2}@32 \d+ B synced-through \d+: entries r\d+ 1\.\.4 \(4\)$/m);
    assert.match(text.stdout, /\(2 shown\)/);
    const missing = raftlog(['dump', pristine, '--file', '999999']);
    assert.equal(missing.status, 2);
    assertOneLineError(missing, /--file 999999: no such log file/);
  });
});

describe('raftlog check', () => {
  it('passes a clean directory without changing it', () => {
    const before = hashFiles(pristine);
    const run = raftlog(['check', pristine]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /result: clean/);
    const json = JSON.parse(raftlog(['check', pristine, '--json']).stdout) as { status: string; records: number; entries: number };
    assert.equal(json.status, 'clean');
    assert.equal(json.records, stressJson.ops + SEAL_RECORDS);
    assert.deepEqual(hashFiles(pristine), before);
  });

  it('finds a flipped byte in a synced record of an older file, naming file and offset, exit 4', () => {
    const dir = copyOf('check-damaged');
    const record = dumpJson(dir, ['--file', '1']).records[5]!;
    flipByte(join(dir, record.file), record.offset + 24 + 100);
    const before = hashFiles(dir);
    const run = raftlog(['check', dir]);
    assert.equal(run.status, 4, run.stdout);
    assert.match(run.stdout, new RegExp(`DAMAGE: ${record.file} offset ${record.offset}: payload checksum mismatch`));
    assert.match(run.stdout, /TolerateTailCorruption\s+refuses/);
    assert.match(run.stdout, /TolerateAnyCorruption\s+opens, dropping/);
    const json = JSON.parse(raftlog(['check', dir, '--json']).stdout) as {
      status: string;
      problems: { file: string; offset: number; kind: string }[];
    };
    assert.equal(json.status, 'damaged');
    assert.deepEqual(
      json.problems.map((p) => [p.file, p.offset, p.kind]),
      [[record.file, record.offset, 'damage']],
    );
    assert.deepEqual(hashFiles(dir), before, 'check changes nothing');
  });

  it('reports a torn tail as such (exit 0, or 4 with --strict) without cutting it', () => {
    const dir = copyOf('check-torn');
    const dump = dumpJson(dir);
    const last = dump.files[dump.files.length - 1]!;
    // Garbage after the last record: what a crash mid-write leaves.
    const file = join(dir, last.name);
    const bytes = readFileSync(file);
    bytes.write('torn write!', last.validBytes + 16);
    writeFileSync(file, bytes);
    const before = hashFiles(dir);
    const run = raftlog(['check', dir]);
    assert.equal(run.status, 0, run.stdout);
    assert.match(run.stdout, new RegExp(`note: ${last.name} offset ${last.validBytes}: torn tail`));
    assert.equal(raftlog(['check', dir, '--strict']).status, 4);
    assert.deepEqual(hashFiles(dir), before, 'a dry run: the tail is still there');
  });
});

describe('raftlog repair', () => {
  it('refuses damage its mode cannot repair (exit 4) and durable loss without --yes (exit 2), changing nothing', () => {
    const dir = copyOf('repair-refuse');
    const record = dumpJson(dir, ['--file', '1']).records[3]!;
    flipByte(join(dir, record.file), record.offset + 24 + 8);
    const before = hashFiles(dir);
    const tail = raftlog(['repair', dir]);
    assert.equal(tail.status, 4, tail.stdout + tail.stderr);
    assert.match(tail.stdout, /TolerateTailCorruption cannot repair this/);
    const any = raftlog(['repair', dir, '--mode', 'any']);
    assert.equal(any.status, 2, any.stdout + any.stderr);
    assert.match(any.stdout, new RegExp(`${record.file} offset ${record.offset}: payload checksum mismatch -> skipped`));
    assert.match(any.stdout, /rerun with --yes/);
    assert.deepEqual(hashFiles(dir), before);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith('repair-backup-')),
      [],
      'no backup for a refusal',
    );
  });

  it('with --yes drops the damaged record, backs up the originals, and leaves a directory that checks clean', () => {
    const dir = copyOf('repair-any');
    const original = dumpJson(dir);
    const record = original.records.find((r) => r.file === '0000000000000001.raftlog' && r.items[0]!.region === 7)!;
    flipByte(join(dir, record.file), record.offset + 24 + 200);
    const damaged = hashFiles(dir);
    const run = raftlog(['repair', dir, '--mode', 'any', '--yes', '--json']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const result = JSON.parse(run.stdout) as {
      status: string;
      strategy: string;
      durableDataLost: boolean;
      backup: string;
      verified: boolean;
    };
    assert.equal(result.status, 'repaired');
    assert.equal(result.strategy, 'rebuild');
    assert.equal(result.durableDataLost, true);
    assert.equal(result.verified, true);
    // The backup holds every original file, byte for byte, and says how to undo.
    assert.deepEqual(hashFiles(result.backup), damaged);
    assert.match(readFileSync(join(result.backup, 'README.txt'), 'utf8'), /To undo/);
    assert.equal(raftlog(['check', dir]).status, 0);
    // Every region survives; region 7 lost exactly the damaged record's entries (1..4): it now starts after them.
    const repaired = dumpJson(dir, ['--summary']);
    assert.equal(repaired.regions.length, 20);
    const before7 = original.regions.find((r) => r.region === 7)!;
    const after7 = repaired.regions.find((r) => r.region === 7)!;
    const lost = record.items[0]!;
    assert.equal(after7.lastIndex, before7.lastIndex);
    if (lost.first === before7.firstIndex) assert.equal(after7.firstIndex, lost.last! + 1);
    for (const region of repaired.regions.filter((r) => r.region !== 7)) {
      assert.deepEqual(
        region,
        original.regions.find((r) => r.region === region.region),
        `region ${region.region} unchanged`,
      );
    }
  });

  it('cuts a torn tail in place without --yes, keeping a copy of the file', () => {
    const dir = copyOf('repair-torn');
    const dump = dumpJson(dir);
    const last = dump.files[dump.files.length - 1]!;
    const file = join(dir, last.name);
    const bytes = readFileSync(file);
    bytes.write('torn write!', last.validBytes + 8);
    writeFileSync(file, bytes);
    const originalLast = createHash('sha256').update(bytes).digest('hex');
    const run = raftlog(['repair', dir, '--json']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const result = JSON.parse(run.stdout) as { strategy: string; durableDataLost: boolean; backup: string; changedFiles: string[] };
    assert.equal(result.strategy, 'in-place');
    assert.equal(result.durableDataLost, false);
    assert.deepEqual(result.changedFiles, [last.name]);
    assert.equal(
      createHash('sha256')
        .update(readFileSync(join(result.backup, last.name)))
        .digest('hex'),
      originalLast,
    );
    const check = JSON.parse(raftlog(['check', dir, '--json']).stdout) as { status: string; records: number };
    assert.equal(check.status, 'clean');
    assert.equal(check.records, stressJson.ops + SEAL_RECORDS, 'no record lost');
    assert.match(raftlog(['repair', dir]).stdout, /nothing to repair/);
  });
});

describe('bad input', () => {
  it('a directory that is not a raftlog directory: exit 2, one line', () => {
    const dir = join(root, 'not-raftlog');
    mkdirSync(dir);
    writeFileSync(join(dir, 'data.bin'), 'x');
    for (const command of ['dump', 'check', 'repair']) {
      const run = raftlog([command, dir]);
      assert.equal(run.status, 2, `${command}: ${run.stderr}`);
      assertOneLineError(run, new RegExp(`^raftlog ${command}: .*not a raftlog directory`));
    }
  });

  it('a missing directory and a file instead of a directory', () => {
    const missing = raftlog(['check', join(root, 'nope')]);
    assert.equal(missing.status, 1);
    assertOneLineError(missing, /no such file or directory/);
    const file = join(root, 'plain-file');
    writeFileSync(file, 'x');
    const notDir = raftlog(['dump', file]);
    assert.equal(notDir.status, 2);
    assertOneLineError(notDir, /not a directory/);
  });

  it('a directory locked by a running engine: repair and stress refuse (exit 3), dump and check read with a note', async () => {
    const dir = copyOf('locked');
    const engine = new Engine({ fs: new PosixFs(dir) });
    await engine.open();
    try {
      const repair = raftlog(['repair', dir, '--yes']);
      assert.equal(repair.status, 3);
      assertOneLineError(repair, new RegExp(`locked: held by running process pid ${process.pid}`));
      const stress = raftlog(['stress', '--dir', dir, '--duration', '0.5']);
      assert.equal(stress.status, 3);
      assertOneLineError(stress, /locked/);
      const check = raftlog(['check', dir]);
      assert.equal(check.status, 0, check.stdout + check.stderr);
      assert.match(check.stderr, /in use \(held by running process pid \d+\); checked anyway/);
      const dump = raftlog(['dump', dir, '--summary']);
      assert.equal(dump.status, 0);
      assert.match(dump.stderr, /in use/);
    } finally {
      await engine.close();
    }
  });

  it('a path without permission: exit 1, one line', (t) => {
    const isRoot = process.getuid?.() === 0;
    if (isRoot && raftlog(['--help'], { uid: 65534, gid: 65534, cwd: tmpdir() }).status !== 0) {
      t.skip('running as root, and user nobody cannot run the CLI from this checkout');
      return;
    }
    const dir = copyOf('no-permission');
    // Root ignores permission bits, so as root the CLI runs as nobody against a 0700 root-owned directory.
    chmodSync(dir, isRoot ? 0o700 : 0o000);
    try {
      const options: SpawnSyncOptions = isRoot ? { uid: 65534, gid: 65534, cwd: tmpdir() } : {};
      for (const args of [
        ['check', dir],
        ['dump', dir],
        ['repair', dir],
        ['probe', dir],
        ['stress', '--dir', join(dir, 'sub'), '--duration', '0.5'],
      ]) {
        const run = raftlog(args, options);
        assert.equal(run.status, 1, `${args[0]}: ${run.stdout} ${run.stderr}`);
        assertOneLineError(run, /permission denied/);
      }
    } finally {
      chmodSync(dir, 0o755);
    }
  });
});

describe('raftlog probe', () => {
  it('measures the device under a path, recommends a backend, and cleans up', () => {
    const dir = join(root, 'probe');
    mkdirSync(dir);
    const run = raftlog(['probe', dir, '--samples', '20', '--json']);
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as {
      fdatasyncAfterAppend: { samples: number; medianMicros: number };
      fdatasyncAfterOverwrite: { medianMicros: number };
      device: string;
      fileSystem: string;
      ioUring: { available: boolean; reason?: string };
      recommendation: { backend: string; reasons: string[] };
    };
    assert.equal(result.fdatasyncAfterAppend.samples, 20);
    assert.ok(result.fdatasyncAfterAppend.medianMicros >= 0 && result.fdatasyncAfterOverwrite.medianMicros >= 0);
    assert.match(result.device, /^\d+:\d+$/);
    assert.equal(typeof result.fileSystem, 'string');
    assert.ok(['pmem', 'uring', 'posix'].includes(result.recommendation.backend));
    assert.equal(result.recommendation.backend === 'uring', result.ioUring.available);
    assert.ok(result.recommendation.reasons.length > 0);
    assert.deepEqual(readdirSync(dir), [], 'the temporary file is removed');
    const text = raftlog(['probe', dir, '--samples', '5']);
    assert.match(text.stdout, /fdatasync after append\s+\d+ µs median/);
    assert.match(text.stdout, /^recommended: --backend (pmem|uring|posix)/m);
  });
});

/** A log an application wrote (not stress): region 1 with entries 1..3 and two keys, one of them not UTF-8. */
async function applicationLog(dir: string): Promise<void> {
  const engine = new Engine({ fs: new PosixFs(dir) });
  await engine.open();
  const batch = new LogBatch();
  batch.addEntries(
    1,
    [1, 2, 3].map((index) => ({ index, term: 1, data: new TextEncoder().encode(`entry ${index}`) })),
  );
  batch.put(1, 'hard_state', Uint8Array.of(8, 1));
  batch.put(1, Uint8Array.of(0xff, 0x00, 0x01), Uint8Array.of(1));
  await engine.write(batch, { sync: true });
  await engine.close();
}

describe('issue 16: a CLI that never surprises', () => {
  it('stress refuses a log it did not create (exit 2, nothing deleted) and deletes it only with --yes', async () => {
    const dir = join(root, 'application-log');
    await applicationLog(dir);
    const before = hashFiles(dir);
    const run = raftlog(['stress', '--dir', dir, '--duration', '0.3', '--regions', '2', '--writers', '1', '--no-progress']);
    assert.equal(run.status, 2, run.stdout + run.stderr);
    assertOneLineError(
      run,
      /refusing to use .*: it holds a raftlog log that raftlog stress did not create \(1 log file, .*\).*pass --yes to delete it, or give another --dir/,
    );
    assert.deepEqual(hashFiles(dir), before, 'the log is untouched');
    const yes = raftlog(['stress', '--dir', dir, '--duration', '0.3', '--regions', '2', '--writers', '1', '--no-progress', '--yes']);
    assert.equal(yes.status, 0, yes.stderr);
    assert.notDeepEqual(hashFiles(dir), before);
    assert.ok(existsSync(join(dir, 'raftlog-stress.marker')), 'stress marks the directory as its own');
  });

  it("stress reuses a directory it created, run after run (the README's npm start)", () => {
    const dir = join(root, 'npm-start');
    for (let run = 0; run < 2; run++) {
      const result = raftlog(['stress', '--dir', dir, '--duration', '0.3', '--regions', '4', '--writers', '2', '--no-progress']);
      assert.equal(result.status, 0, `run ${run}: ${result.stderr}`);
    }
    // Removing the marker is how a user protects a log from stress.
    rmSync(join(dir, 'raftlog-stress.marker'));
    assert.equal(raftlog(['stress', '--dir', dir, '--duration', '0.3', '--regions', '4', '--writers', '2', '--no-progress']).status, 2);
  });

  it('--version prints the version of package.json', () => {
    const pkg = JSON.parse(readFileSync(resolve(dirname(MAIN), '../../package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const run = raftlog([flag]);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout.trim(), pkg.version);
    }
  });

  it('dump --json prints keys as strings without added quotes, and null (with keyHex) for bytes that are not UTF-8', async () => {
    const dir = join(root, 'keys');
    await applicationLog(dir);
    const dump = JSON.parse(raftlog(['dump', dir, '--json', '--keys']).stdout) as {
      records: { items: { kind: string; key?: string | null; keyHex?: string }[] }[];
      regions: { keyList: { key: string | null; keyHex: string }[] }[];
    };
    const puts = dump.records.flatMap((r) => r.items).filter((i) => i.kind === 'put');
    assert.deepEqual(
      puts.map((p) => [p.key, p.keyHex]),
      [
        ['hard_state', Buffer.from('hard_state').toString('hex')],
        [null, 'ff0001'],
      ],
    );
    assert.deepEqual(dump.regions[0]!.keyList.map((k) => k.key).sort(), [null, 'hard_state'].sort());
    // Text output still quotes, so a key with spaces stays readable.
    assert.match(raftlog(['dump', dir]).stdout, /put r1 "hard_state" = 2 B; put r1 0xff0001 = 1 B/);
  });

  it('check counts the bytes of a torn write as dropped, not the preallocated zeros after it', () => {
    const dir = copyOf('check-torn-bytes');
    const dump = dumpJson(dir);
    const last = dump.files[dump.files.length - 1]!;
    const file = join(dir, last.name);
    // A clean close cut the preallocated tail; a crashed engine leaves it: put 1 MiB of zeros back.
    const bytes = Buffer.concat([readFileSync(file), Buffer.alloc(1 << 20)]);
    assert.ok(bytes.length - last.validBytes > 4096, 'the last file has a preallocated tail');
    bytes.write('torn write!', last.validBytes + 16);
    writeFileSync(file, bytes);
    const json = JSON.parse(raftlog(['check', dir, '--json']).stdout) as {
      problems: { offset: number; bytesDropped: number }[];
      modes: { bytesDropped: number }[];
    };
    // 16 bytes before the garbage, 11 of garbage, padded to the 8-byte record alignment.
    assert.deepEqual(
      json.problems.map((p) => [p.offset, p.bytesDropped]),
      [[last.validBytes, 32]],
    );
    assert.ok(
      json.modes.every((m) => m.bytesDropped === 32),
      JSON.stringify(json.modes),
    );
    assert.match(raftlog(['check', dir]).stdout, /torn tail .*\(32 B\)/);
  });

  it('check and repair name the entries each region loses and its last intact index, not just bytes', () => {
    const dir = copyOf('lost-entries');
    const original = dumpJson(dir);
    // A record of region 5 in the middle of its log: entries before it are intact, the ones after follow a hole.
    const ofRegion = original.records.filter((r) => r.file === '0000000000000001.raftlog' && r.items[0]!.region === 5);
    assert.ok(ofRegion.length >= 3, `region 5 has records in file 1: ${ofRegion.length}`);
    const record = ofRegion[1]!;
    const { first, last } = record.items[0]!;
    flipByte(join(dir, record.file), record.offset + 24 + 100);
    const lastIndex = original.regions.find((r) => r.region === 5)!.lastIndex!;
    const expected = {
      region: 5,
      firstIndex: 1,
      lastIndex,
      lastIntactIndex: first! - 1,
      damaged: [{ first, last }],
      // TolerateAnyCorruption keeps the run after the hole, so the intact entries before it go too.
      kept: { first: last! + 1, last: lastIndex },
      lost: [{ first: 1, last }],
    };
    const check = raftlog(['check', dir, '--json']);
    assert.equal(check.status, 4);
    assert.deepEqual((JSON.parse(check.stdout) as { lostEntries: unknown[] }).lostEntries, [expected]);
    const line = `region 5: last intact index ${first! - 1}; damaged ${first}..${last}; keeps ${last! + 1}..${lastIndex}; loses 1..${last}`;
    assert.ok(raftlog(['check', dir]).stdout.includes(line), line);
    const refused = raftlog(['repair', dir, '--mode', 'any']);
    assert.equal(refused.status, 2);
    assert.ok(refused.stdout.includes(line), refused.stdout);
    const repaired = raftlog(['repair', dir, '--mode', 'any', '--yes', '--json']);
    assert.equal(repaired.status, 0, repaired.stderr);
    const result = JSON.parse(repaired.stdout) as { lostEntries: unknown[]; bytesDropped: number; backup: string };
    assert.deepEqual(result.lostEntries, [expected]);
    assert.equal(
      result.bytesDropped,
      24 + record.payloadBytes + ((8 - ((24 + record.payloadBytes) % 8)) % 8),
      'exactly the damaged record',
    );
    assert.ok(readFileSync(join(result.backup, 'README.txt'), 'utf8').includes(line));
    const after = dumpJson(dir, ['--summary']).regions.find((r) => r.region === 5)!;
    assert.deepEqual([after.firstIndex, after.lastIndex], [last! + 1, lastIndex], 'what repair said it keeps');
  });
});

describe('help', () => {
  it('every command has --help, exit 0', () => {
    for (const [command, option] of [
      ['stress', '--entry-size'],
      ['dump', '--region'],
      ['check', '--strict'],
      ['repair', '--yes'],
      ['probe', '--samples'],
    ] as const) {
      const run = raftlog([command, '--help']);
      assert.equal(run.status, 0);
      assert.match(run.stdout, new RegExp(option));
    }
    const top = raftlog(['--help']);
    assert.equal(top.status, 0);
    assert.match(top.stdout, /Exit codes:/);
  });
});
