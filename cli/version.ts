/**
 * The package version, for `raftlog --version`: read from the package.json
 * the running CLI was installed with, so it cannot drift from a copy.
 */
import { readFileSync } from 'node:fs';

/** From dist/cli/ (compiled) up to the package root. */
const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

export function packageVersion(): string {
  try {
    const version = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version?: unknown }).version;
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}
