#!/usr/bin/env node
/**
 * The `raftlog` command. Each subcommand lives in its own module; this file
 * wires options to them and owns the failure contract: one line on stderr,
 * a documented exit code, never a stack trace unless RAFTLOG_DEBUG=1.
 */
import { Command, CommanderError, Option } from 'commander';
import { BACKENDS, type BackendName } from './backends.js';
import { ExitCode, describeError, exitCodeOf, isDebug } from './errors.js';
import { formatCheck, runCheck } from './check.js';
import { runDump } from './dump.js';
import { formatProbe, runProbe } from './probe.js';
import { formatRepair, runRepair } from './repair.js';
import { byteSize, fileList, nonNegativeInt, positiveInt, recoveryMode, regionList, seconds, secondsOrZero } from './parse.js';
import { RecoveryMode } from '../src/recovery/recovery.js';
import { installBatchChecksum } from '../src/format/checksum.js';
import { installCompression } from '../src/format/compression.js';
import { loadNativeBatchChecksum, loadNativeLz4 } from '../hardware/native.js';
import { formatStressReport, runStress, type StressOptions } from './stress.js';
import { packageVersion } from './version.js';

// The CLI builds engines from src/ directly, not through the package entry:
// it installs the native batch checksum and lz4 the same way (../index.ts says why).
installBatchChecksum(loadNativeBatchChecksum());
installCompression(loadNativeLz4());

const EXIT_CODES_HELP = `
Exit codes:
  0    success (check: no damage)
  1    failure: I/O error, permission denied, missing path, backend unavailable
  2    usage error, not a raftlog directory, or a refusal (repair or stress without --yes)
  3    the directory is locked by a running engine
  4    damage found (check), or damage the chosen mode cannot repair (repair)
  130  interrupted
Set RAFTLOG_DEBUG=1 to see stack traces.`;

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** Resolves on the first SIGINT; a second one exits at once. */
function interruption(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => {
      process.stderr.write('\nstopping (Ctrl-C again to abort)…\n');
      process.once('SIGINT', () => process.exit(ExitCode.INTERRUPTED));
      resolve();
    });
  });
}

function note(text: string): void {
  process.stderr.write(`note: ${text}\n`);
}

function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('raftlog');
  program
    .description('raftlog: a persistent storage engine for Multi-Raft logs — benchmark, inspect, verify and repair log directories')
    .version(packageVersion(), '-V, --version', 'print the version of raftlog and exit')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });

  program
    .command('stress')
    .description('append to many regions from many writers for a while, with live progress, then report throughput, latency and GC figures')
    .option('--dir <dir>', 'log directory (created if missing; a log stress created there before is deleted, any other log only with --yes)', './data')
    .option('--yes', 'delete a log in --dir that stress did not create', false)
    .option('--duration <seconds>', 'how long to write', seconds, 10)
    .addOption(new Option('--backend <name>', 'storage backend').choices(BACKENDS).default('posix'))
    .option('--encrypt', 'wrap the backend in EncryptedFs with a random, ephemeral master key', false)
    .option('--direct', 'with --backend uring: O_DIRECT with aligned blocks', false)
    .option('--regions <n>', 'number of regions (Raft groups)', positiveInt, 1000)
    .option('--writers <n>', 'concurrent writers; each owns regions r where r mod writers = its number', positiveInt, 64)
    .option('--entry-size <bytes>', 'bytes of data per entry (e.g. 1024, 4k)', byteSize, 1024)
    .option('--batch-entries <n>', 'entries per region per batch', positiveInt, 4)
    .option('--regions-per-batch <n>', "regions per batch, from the writer's own", positiveInt, 1)
    .option('--no-sync', 'do not wait for fdatasync before acknowledging a write')
    .option('--keep <n>', 'entries each region keeps; older ones are compacted (bounds memory)', positiveInt, 1024)
    .option('--purge-interval <seconds>', 'seconds between purgeExpiredFiles() calls (GC), 0 to disable', secondsOrZero, 2)
    .option('--target-file-size <bytes>', 'log files rotate at this size (e.g. 128m)', byteSize, 128 << 20)
    .option('--no-progress', 'no live progress on stderr')
    .option('--json', 'print the report as JSON', false)
    .addHelpText('after', '\nExample:\n  raftlog stress --dir ./data --duration 10 --regions 1000 --writers 64 --entry-size 1024\n')
    .action(async (raw: Record<string, unknown>) => {
      const options: StressOptions = {
        dir: raw['dir'] as string,
        duration: raw['duration'] as number,
        backend: raw['backend'] as BackendName,
        encrypt: raw['encrypt'] === true,
        direct: raw['direct'] === true,
        regions: raw['regions'] as number,
        writers: raw['writers'] as number,
        entrySize: raw['entrySize'] as number,
        batchEntries: raw['batchEntries'] as number,
        regionsPerBatch: raw['regionsPerBatch'] as number,
        sync: raw['sync'] !== false,
        keep: raw['keep'] as number,
        purgeInterval: raw['purgeInterval'] as number,
        targetFileSize: raw['targetFileSize'] as number,
        progress: raw['progress'] !== false,
        yes: raw['yes'] === true,
      };
      const result = await runStress(options, { note, interrupted: interruption() });
      process.stdout.write(raw['json'] === true ? json(result) : formatStressReport(result));
      setExit(result.interrupted ? ExitCode.INTERRUPTED : ExitCode.OK);
    });

  program
    .command('dump')
    .description('print the records, regions, entries and keys of a log directory (read-only)')
    .argument('<dir>', 'log directory')
    .option('--json', 'one JSON document: records, files, regions, problems', false)
    .option('--region <ids>', 'only these regions (comma-separated or repeated)', regionList, [])
    .option('--file <names>', 'only records of these files, by name or sequence number (comma-separated or repeated)', fileList, [])
    .option('--entries', 'print every entry (index, term, type, data preview), not just each run', false)
    .option('--keys', "list each region's keys in the summary", false)
    .option('--summary', 'files and regions only, no records', false)
    .option('--limit <n>', 'print at most this many records (0: all)', nonNegativeInt, 0)
    .option('--mode <mode>', 'recovery mode to read with (absolute, tail, any)', recoveryMode, RecoveryMode.TolerateAnyCorruption)
    .action(async (dir: string, raw: Record<string, unknown>) => {
      setExit(
        await runDump(
          dir,
          {
            json: raw['json'] === true,
            regions: raw['region'] as number[],
            files: raw['file'] as string[],
            entries: raw['entries'] === true,
            keys: raw['keys'] === true,
            summaryOnly: raw['summary'] === true,
            limit: raw['limit'] as number,
            mode: raw['mode'] as RecoveryMode,
          },
          { note },
        ),
      );
    });

  program
    .command('check')
    .description("verify every record's checksums, the file sequence and replay, without changing anything; exit 4 on damage")
    .argument('<dir>', 'log directory')
    .option('--strict', 'count a torn tail (left by a crash, cut by the engine on open) as damage too', false)
    .option('--json', 'print the result as JSON', false)
    .action(async (dir: string, raw: Record<string, unknown>) => {
      const result = await runCheck(dir, { strict: raw['strict'] === true });
      if (result.lockedBy !== undefined && raw['json'] !== true) note(`${dir} is in use (${result.lockedBy}); checked anyway, its last file may have been changing`);
      process.stdout.write(raw['json'] === true ? json(result) : formatCheck(result));
      setExit(result.exitCode);
    });

  program
    .command('repair')
    .description('cut a torn tail or drop damaged records as a recovery mode would, after backing up every file it changes')
    .argument('<dir>', 'log directory (must not be open in a running engine)')
    .option(
      '--mode <mode>',
      'TolerateTailCorruption (tail): cut the last file at its first damage; TolerateAnyCorruption (any): drop damaged records and files anywhere, rebuilding the log; AbsoluteConsistency (absolute): only cut what was never proven durable',
      recoveryMode,
      RecoveryMode.TolerateTailCorruption,
    )
    .option('--yes', 'go ahead even when data proven durable would be dropped', false)
    .option('--json', 'print the result as JSON', false)
    .action(async (dir: string, raw: Record<string, unknown>) => {
      const result = await runRepair(dir, { mode: raw['mode'] as RecoveryMode, yes: raw['yes'] === true });
      process.stdout.write(raw['json'] === true ? json(result) : formatRepair(result));
      setExit(result.exitCode);
    });

  program
    .command('probe')
    .description('measure what the device under a path can do (block sizes, DAX/MAP_SYNC, io_uring, O_DIRECT, fdatasync latency) and recommend a backend')
    .argument('<path>', 'a directory on the device to probe (a temporary file is written there and removed)')
    .option('--samples <n>', 'synced 4 KiB writes per latency measurement', positiveInt, 200)
    .option('--json', 'print the result as JSON', false)
    .action(async (target: string, raw: Record<string, unknown>) => {
      const result = await runProbe(target, { samples: raw['samples'] as number });
      process.stdout.write(raw['json'] === true ? json(result) : formatProbe(result));
      setExit(ExitCode.OK);
    });

  return program;
}

async function main(argv: string[]): Promise<number> {
  let exitCode: number = ExitCode.OK;
  const program = buildProgram((code) => (exitCode = code));
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are "errors" to commander; they already printed.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return ExitCode.OK;
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const command = program.args[0] ?? '';
    if (isDebug() && error instanceof Error) process.stderr.write(`${error.stack ?? error.message}\n`);
    process.stderr.write(`raftlog${command === '' ? '' : ` ${command}`}: ${describeError(error)}\n`);
    return exitCodeOf(error);
  }
}

// A rejection that escapes main (a bug) must still honour the no-stack-trace contract.
process.on('unhandledRejection', (reason) => {
  if (isDebug() && reason instanceof Error) process.stderr.write(`${reason.stack ?? reason.message}\n`);
  process.stderr.write(`raftlog: internal error: ${describeError(reason)}\n`);
  process.exit(ExitCode.FAILURE);
});

void main(process.argv).then((code) => {
  process.exitCode = code;
  // Lingering handles (a backend's ring, a stray timer) must not keep a finished command alive.
  setImmediate(() => process.exit(code));
});

