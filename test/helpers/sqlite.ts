/** Helpers for tests of repositories on SQLite. */
import type { Db } from '../../src/store/index.ts';

/**
 * Records every `synchronous = …` pragma `db` runs from now on, as `synchronous=FULL` and so on:
 * how a test sees that a write was committed durably (`durably` sets FULL, then NORMAL again).
 */
export function recordSynchronous(db: Db): string[] {
  const levels: string[] = [];
  const pragma = db.pragma.bind(db);
  db.pragma = ((source: string, options?: { simple?: boolean }) => {
    if (/^synchronous\s*=/.test(source)) levels.push(source.replace(/\s+/g, ''));
    return pragma(source, options);
  }) as Db['pragma'];
  return levels;
}
