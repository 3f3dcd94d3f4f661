/**
 * The app log stamper (native/logstamp): each line captured gets its time in front, a long
 * line is cut, a partial line is not held forever, and termination signals do not stop it
 * before the app's last lines are written (issue 15).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseStampedLine } from '../../../src/core/log-stamp.ts';
import { openLogFd } from '../../../src/workloads/log-files.ts';
import { findLogStamper, startLogStamper } from '../../../src/workloads/log-stamper.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-stamp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `script` in sh with its output through a stamper; resolves with the log's lines once both are gone. */
async function stamped(script: string, name: string, onStarted?: (pid: number) => void): Promise<string[]> {
  const path = findLogStamper();
  assert.ok(path, 'scripts/bootstrap compiles native/logstamp');
  const log = join(dir, name);
  const fd = openLogFd(log);
  const { stamper, release } = startLogStamper(path, fd, undefined);
  const app = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', stamper.stdin!, stamper.stdin!] });
  release();
  closeSync(fd);
  if (stamper.pid) onStarted?.(stamper.pid);
  await new Promise((r) => app.once('exit', r));
  await new Promise((r) => (stamper.exitCode === null ? stamper.once('exit', r) : r(null)));
  return readFileSync(log, 'utf8').split('\n').slice(0, -1);
}

describe('app log stamper', () => {
  it('stamps each line with its capture time; empty lines and a last line without newline too', async () => {
    const t0 = Date.now();
    const lines = await stamped("echo one; echo; echo 'two words' >&2; printf last", 'basic.log');
    const t1 = Date.now();
    const parsed = lines.map(parseStampedLine);
    assert.deepEqual(
      parsed.map((p) => p.text),
      ['one', '', 'two words', 'last'],
    );
    for (const p of parsed)
      assert.ok(p.time !== undefined && p.time >= t0 - 5 && p.time <= t1 + 5, String(p.time));
  });

  it('cuts a line longer than 16 KiB into stamped pieces, and writes a partial line after a second', async () => {
    const lines = await stamped(
      "head -c 20000 /dev/zero | tr '\\0' x; echo; printf 'prompt> '; sleep 1.4; echo yes",
      'long.log',
    );
    const texts = lines.map((l) => parseStampedLine(l).text);
    assert.deepEqual(
      texts.map((t) => t.length),
      [16384, 20000 - 16384, 'prompt> '.length, 3],
    );
    assert.deepEqual(texts.slice(2), ['prompt> ', 'yes']);
  });

  it('outlives SIGTERM and SIGHUP: the app keeps its output and its last lines are written', async () => {
    const lines = await stamped('echo before; sleep 0.3; echo after', 'signals.log', (pid) => {
      process.kill(pid, 'SIGTERM');
      process.kill(pid, 'SIGHUP');
    });
    assert.deepEqual(
      lines.map((l) => parseStampedLine(l).text),
      ['before', 'after'],
    );
  });
});
