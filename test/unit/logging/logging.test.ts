/** The root logger writes what its level lets through, to every stream. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../../src/logging/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-logging-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function linesAt(level: string | undefined): Promise<string[]> {
  const file = join(dir, `${level ?? 'default'}.log`);
  const { logger, close } = createLogger({ level, file, stdout: false });
  logger.trace('t');
  logger.debug('d');
  logger.info('i');
  logger.warn('w');
  await sleep(50); // the file stream opens asynchronously
  close();
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
}

describe('createLogger', () => {
  it('writes debug lines at level debug', async () => {
    assert.deepEqual(await linesAt('debug'), ['d', 'i', 'w']);
  });

  it('writes info and above by default, and only warn at level warn', async () => {
    assert.deepEqual(await linesAt(undefined), ['i', 'w']);
    assert.deepEqual(await linesAt('warn'), ['w']);
  });
});
