import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import { EventRepo } from '../../../src/workloads/event-repo.ts';
import { workloadsMigrations } from '../../../src/workloads/migrations.ts';

describe('event repository', () => {
  it('events: newest last, and the history of an app stays bounded', () => {
    const db = openStore(':memory:', workloadsMigrations);
    const events = new EventRepo(db);
    for (let i = 0; i < 600; i++) events.add('api', 'restart', null, `n${i}`);
    const all = events.list('api', 1000);
    assert.ok(all.length <= 550, `kept ${all.length}`);
    assert.equal(all.at(-1)?.detail, 'n599');
  });
});
