/**
 * The audit log under a flood (issue 12): refusals from one source with one code fold into one
 * row with a count, so a client sending bad envelopes cannot roll the log over and erase real
 * entries; accepted and relayed entries are never folded. Seen command ids are written durably.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { AuditLog, SeenIds } from '../../../src/commands/audit.ts';
import { signCommand } from '../../../src/commands/envelope.ts';
import { commandMigrations } from '../../../src/commands/migrations.ts';
import type { FrameSink } from '../../../src/commands/service.ts';
import { ActionRegistry, defineAction } from '../../../src/core/actions.ts';
import { generateSigner } from '../../../src/crypto/ed25519.ts';
import { openStore } from '../../../src/store/index.ts';
import { commandNode } from '../../helpers/commands.ts';
import { recordSynchronous } from '../../helpers/sqlite.ts';

const admin = generateSigner().signer;

const refusal = (code: string) => ({
  id: null,
  kid: null,
  action: null,
  target: null,
  code,
  detail: 'bad',
  via: 'http',
});

describe('audit log: refusal folding', () => {
  it('folds refusals by source and code within the window, and starts a new row after it', () => {
    const audit = new AuditLog(openStore(':memory:', commandMigrations));
    const t0 = 1_000_000;
    for (let i = 0; i < 50; i++)
      audit.refuse({ ...refusal('BAD_ENVELOPE'), source: '192.0.2.7' }, t0 + i * 100);
    audit.refuse({ ...refusal('BAD_SIGNATURE'), source: '192.0.2.7' }, t0 + 200);
    audit.refuse({ ...refusal('BAD_ENVELOPE'), source: '192.0.2.8' }, t0 + 300);
    audit.refuse({ ...refusal('BAD_ENVELOPE'), source: '192.0.2.7' }, t0 + 61_000);
    assert.deepEqual(
      audit.list().map((r) => [r.code, r.source, r.count]),
      [
        ['BAD_ENVELOPE', '192.0.2.7', 50],
        ['BAD_SIGNATURE', '192.0.2.7', 1],
        ['BAD_ENVELOPE', '192.0.2.8', 1],
        ['BAD_ENVELOPE', '192.0.2.7', 1],
      ],
    );
    assert.equal(audit.list()[0].lastAt, t0 + 49 * 100);
  });

  it("refusals of verified keys fold per key, so one operator's refusals never hide another's", () => {
    const audit = new AuditLog(openStore(':memory:', commandMigrations));
    const relay = '12D3KooWrelay';
    for (const kid of ['kidAAAAAAAAAAAAA', 'kidBBBBBBBBBBBBB', 'kidAAAAAAAAAAAAA'])
      audit.refuse(
        { ...refusal('FORBIDDEN_ROLE'), kid, via: 'mesh', source: relay, verifiedKid: kid },
        5_000,
      );
    // A claimed, unverified kid does not split a fold: anyone can write any kid.
    for (const kid of ['kidCCCCCCCCCCCCC', 'kidDDDDDDDDDDDDD'])
      audit.refuse({ ...refusal('BAD_SIGNATURE'), kid, via: 'mesh', source: relay }, 5_000);
    assert.deepEqual(
      audit.list().map((r) => [r.code, r.kid, r.count]),
      [
        ['FORBIDDEN_ROLE', 'kidAAAAAAAAAAAAA', 2],
        ['FORBIDDEN_ROLE', 'kidBBBBBBBBBBBBB', 1],
        ['BAD_SIGNATURE', 'kidCCCCCCCCCCCCC', 2],
      ],
    );
  });

  it('accepted and relayed entries are never folded', () => {
    const audit = new AuditLog(openStore(':memory:', commandMigrations));
    for (let i = 0; i < 3; i++) {
      audit.record({ ...refusal(''), code: null, verdict: 'accepted', id: `id-accepted-000000${i}` });
      audit.record({ ...refusal(''), code: null, verdict: 'relayed', id: `id-relayed-0000000${i}` });
    }
    assert.equal(audit.list().length, 6);
    assert.ok(audit.list().every((r) => r.count === 1));
  });

  it('the fold memory is bounded: a source per 250 ms for 20 minutes keeps at most 1024 folds', () => {
    const audit = new AuditLog(openStore(':memory:', commandMigrations));
    for (let i = 0; i < 5000; i++)
      audit.refuse({ ...refusal('BAD_JSON'), source: `10.0.${i >> 8}.${i & 255}` }, i * 250);
    assert.ok(audit.foldsHeld <= 1024, `${audit.foldsHeld} folds held`);
    const rows = audit.list({ limit: 10_000 });
    assert.equal(rows.length, 5000, 'each source its own row: within the budget of new rows');
  });

  it('past the budget of new rows in a window, refusals from many sources fold into one row per code', () => {
    const audit = new AuditLog(openStore(':memory:', commandMigrations));
    for (let i = 0; i < 5000; i++)
      audit.refuse({ ...refusal('BAD_JSON'), source: `10.1.${i >> 8}.${i & 255}` }, 1_000 + i);
    const rows = audit.list({ limit: 10_000 });
    assert.equal(
      rows.reduce((n, r) => n + r.count, 0),
      5000,
      'every refusal is counted somewhere',
    );
    assert.ok(rows.length <= 301, `${rows.length} rows`);
    assert.deepEqual(
      rows.filter((r) => r.source === '*').map((r) => [r.code, r.count]),
      [['BAD_JSON', 5000 - (rows.length - 1)]],
    );
  });

  it('a 10 000 bad-envelope flood from one source leaves a handful of rows, and real entries before and after it', async () => {
    const actions = new ActionRegistry();
    actions.register(
      defineAction({
        name: 'test.read',
        describe: 'r',
        access: 'read',
        args: z.object({}),
        handler: async () => 'ok',
      }),
    );
    const { self, audit, service } = commandNode({ admin, actions });
    const sink: FrameSink = async () => {};
    const none = (async function* () {})();
    const signal = new AbortController().signal;
    const real = () => {
      const { envelope, payload } = signCommand(admin, { target: self, action: 'test.read' });
      return { envelope, id: payload.id };
    };
    const before = real();
    await service.handle(before.envelope, none, sink, { via: 'http', signal, source: '127.0.0.1' });
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) {
      const bad = i % 2 ? { v: 1, kid: 'AAAAAAAAAAAAAAAA', payload: 'x', sig: 'y' } : { hello: i };
      await service.handle(bad, none, sink, { via: 'http', signal, source: '203.0.113.9' });
    }
    const ms = performance.now() - started;
    const after = real();
    await service.handle(after.envelope, none, sink, { via: 'http', signal, source: '127.0.0.1' });
    const rows = audit.list({ limit: 10_000 });
    const refused = rows.filter((r) => r.verdict === 'refused');
    assert.ok(refused.length <= 3, `${refused.length} refusal rows`);
    assert.equal(
      refused.reduce((n, r) => n + r.count, 0),
      10_000,
    );
    assert.ok(refused.every((r) => r.source === '203.0.113.9' && r.via === 'http'));
    assert.deepEqual(
      rows.filter((r) => r.verdict === 'accepted').map((r) => r.id),
      [before.id, after.id],
    );
    assert.ok(ms < 5_000, `the flood took ${Math.round(ms)} ms`);
  });
});

describe('seen command ids', () => {
  it('a claim commits with synchronous=FULL, and a second claim of the id is a replay', () => {
    const db = openStore(':memory:', commandMigrations);
    const levels = recordSynchronous(db);
    const seen = new SeenIds(db);
    const exp = Math.floor(Date.now() / 1000) + 60;
    assert.equal(seen.claim('id-0000000000000001', exp), true);
    assert.deepEqual(levels, ['synchronous=FULL', 'synchronous=NORMAL']);
    assert.equal(seen.claim('id-0000000000000001', exp), false);
  });
});
