// Builds the native addon from source for this checkout (the repository's
// `npm ci` runs it through `prepare`). Never fails the install: without a
// compiler, Node headers or Linux, raftlog still works on PosixFs, MemFs,
// FaultFs and EncryptedFs, and UringFs/PmemFs report UNSUPPORTED saying why.
// `npm run build:native` is the strict form that fails loudly.
import { spawnSync } from 'node:child_process';

const result = spawnSync('node-gyp', ['rebuild', '-C', 'hardware'], { stdio: 'inherit', shell: process.platform === 'win32' });
if (result.status !== 0) {
  const why = result.error?.message ?? `node-gyp exited with ${result.status ?? result.signal}`;
  process.stderr.write(
    `\nraftlog: the native addon was not built (${why}).\n` +
      'PosixFs, MemFs, FaultFs and EncryptedFs work without it; UringFs and PmemFs will report UNSUPPORTED.\n' +
      'To build it: install a C++17 compiler, make and Python, then `npm run build:native`.\n\n',
  );
}
