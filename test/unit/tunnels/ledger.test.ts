/**
 * The tunnel ledger's limits: a client's tunnels past a peer's limit wait for a slot, in order,
 * instead of failing (issue 14: 1000 concurrent connections through one forward all complete);
 * the wait is bounded in count and time; the served side has headroom over the opener's limit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/logging/index.ts';
import { MAX_WAITING_TUNNELS } from '../../../src/tunnels/constants.ts';
import { TunnelLedger } from '../../../src/tunnels/ledger.ts';
import { codeOf } from '../../helpers/errors.ts';

const never = () => new AbortController().signal;

describe('tunnel ledger', () => {
  it('a client past the per-peer limit waits, and gets the slot freed first, in order', async () => {
    const ledger = new TunnelLedger({ maxPerPeer: 2, maxTotal: 100 }, silentLogger());
    const a = await ledger.slot('p', never());
    const b = await ledger.slot('p', never());
    const order: string[] = [];
    const queued = (name: string) =>
      ledger.slot('p', never()).then((release) => {
        order.push(name);
        return release;
      });
    const c = queued('c');
    const d = queued('d');
    // Another peer is not held up by p's queue.
    const q = await ledger.slot('q', AbortSignal.timeout(1000));
    q();
    await new Promise((r) => setImmediate(r));
    assert.equal(order.length, 0);
    a();
    a(); // idempotent: one release frees one slot
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['c']);
    b();
    (await c)();
    (await d)();
    assert.deepEqual(order, ['c', 'd']);
  });

  it('a waiting client gives up when its signal aborts, and leaves the queue', async () => {
    const ledger = new TunnelLedger({ maxPerPeer: 1, maxTotal: 100 }, silentLogger());
    const held = await ledger.slot('p', never());
    const ac = new AbortController();
    const waiting = ledger.slot('p', ac.signal);
    ac.abort(new Error('client went away'));
    await assert.rejects(waiting, /client went away/);
    held();
    // The slot is free again for the next one, not handed to the aborted waiter.
    const next = await ledger.slot('p', AbortSignal.timeout(1000));
    next();
  });

  it('the queue is bounded: past MAX_WAITING_TUNNELS a client is refused at once', async () => {
    const ledger = new TunnelLedger({ maxPerPeer: 1, maxTotal: 100 }, silentLogger());
    const held = await ledger.slot('p', never());
    const ac = new AbortController();
    const waiters = Array.from({ length: MAX_WAITING_TUNNELS }, () =>
      ledger.slot('p', ac.signal).catch(() => {}),
    );
    await assert.rejects(ledger.slot('p', never()), (err: { code?: string }) => err.code === 'TUNNEL_LIMIT');
    ac.abort();
    await Promise.all(waiters);
    held();
  });

  it('the served side refuses past the limit with headroom, and counts the total', () => {
    const ledger = new TunnelLedger({ maxPerPeer: 4, maxTotal: 100 }, silentLogger());
    const slots = Array.from({ length: 5 }, () => ledger.acquire('p')); // 4 × 1.25
    assert.equal(
      codeOf(() => ledger.acquire('p')),
      'TUNNEL_LIMIT',
    );
    for (const r of slots) r();
    const small = new TunnelLedger({ maxPerPeer: 10, maxTotal: 2 }, silentLogger());
    small.acquire('a');
    small.acquire('b');
    assert.equal(
      codeOf(() => small.acquire('c')),
      'TUNNEL_LIMIT',
    );
  });
});
