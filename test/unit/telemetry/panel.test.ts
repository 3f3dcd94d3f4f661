import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type PanelBeat, PanelPusher } from '../../../src/telemetry/panel.ts';
import { sinkLogger } from '../../helpers/telemetry.ts';

interface Received {
  auth: string | undefined;
  beat: PanelBeat;
}

/** A panel whose answer the test controls: a status code, or `hang` (never answers). */
function panel() {
  const received: Received[] = [];
  const state = { mode: 200 as number | 'hang', reply: '{}' };
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      if (state.mode === 'hang') return;
      if (state.mode === 200) received.push({ auth: req.headers.authorization, beat: JSON.parse(body) });
      res.writeHead(state.mode, { 'content-type': 'application/json' });
      res.end(state.reply);
    });
  });
  return { server, received, state };
}

let n = 0;
const beat = async (): Promise<PanelBeat> => ({
  server_id: 'web-1',
  timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, n++)).toISOString(),
  metrics: {
    cpu_percent: 1,
    ram_used_mb: 1,
    ram_total_mb: 2,
    disk_used_gb: 1,
    disk_total_gb: 2,
    load_average: 0.1,
    network_in_bytes: 1,
    network_out_bytes: 2,
  },
  containers: [],
  agent_version: '0.1.0',
});

describe('panel push', () => {
  const p = panel();
  let url = '';
  before(async () => {
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(p.server.address() as AddressInfo).port}/api/heartbeat`;
  });
  after(() => {
    p.server.closeAllConnections();
    p.server.close();
  });

  it('queues at most 10 beats while the panel answers 500, then flushes them oldest first', async () => {
    const { logger, lines } = sinkLogger();
    const pusher = new PanelPusher({ url, token: 's3cret', intervalS: 60 }, { logger, beat });
    p.state.mode = 500;
    const made: string[] = [];
    for (let i = 0; i < 14; i++) {
      const b = await beat();
      made.push(b.timestamp);
      // Drive the pusher the way its timer does: enqueue, then try to flush.
      await enqueueAndFlush(pusher, b);
    }
    assert.equal(pusher.stats().queued, 10);
    assert.equal(pusher.stats().dropped, 4);
    assert.equal(p.received.length, 0);
    assert.equal(lines.filter((l) => l.level === 40).length, 1, 'one warning per outage, not per beat');
    p.state.mode = 200;
    p.state.reply = JSON.stringify({ next_heartbeat_seconds: 7 });
    await pusher.flush();
    assert.deepEqual(
      p.received.map((r) => r.beat.timestamp),
      made.slice(4),
      'the 10 newest beats, oldest first',
    );
    assert.ok(p.received.every((r) => r.auth === 'Bearer s3cret'));
    assert.equal(pusher.stats().queued, 0);
    assert.equal(pusher.stats().nextInS, 7, 'next_heartbeat_seconds is honoured');
    assert.ok(!JSON.stringify(lines).includes('s3cret'), 'the token is never logged');
    pusher.stop();
  });

  it('drops a beat the panel refuses with 4xx instead of retrying it forever', async () => {
    p.received.length = 0;
    const { logger } = sinkLogger();
    const pusher = new PanelPusher({ url, token: 'bad', intervalS: 60 }, { logger, beat });
    p.state.mode = 401;
    await enqueueAndFlush(pusher, await beat());
    assert.equal(pusher.stats().queued, 0);
    assert.equal(pusher.stats().dropped, 1);
    pusher.stop();
  });

  it('gives up on a panel that never answers within the timeout and keeps the beat', async () => {
    const { logger } = sinkLogger();
    const pusher = new PanelPusher({ url, token: 't', intervalS: 60, timeoutMs: 300 }, { logger, beat });
    p.state.mode = 'hang';
    const t0 = Date.now();
    await enqueueAndFlush(pusher, await beat());
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(pusher.stats().queued, 1);
    pusher.stop();
    p.server.closeAllConnections();
  });

  it('sends on its own timer', async () => {
    p.received.length = 0;
    p.state.mode = 200;
    p.state.reply = '';
    const { logger } = sinkLogger();
    const pusher = new PanelPusher({ url, token: 't', intervalS: 1 }, { logger, beat });
    pusher.start(10);
    const until = Date.now() + 5000;
    while (p.received.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    pusher.stop();
    assert.ok(p.received.length >= 2);
  });
});

/** One timer tick without waiting for the timer: enqueue a beat and flush. */
async function enqueueAndFlush(pusher: PanelPusher, b: PanelBeat): Promise<void> {
  pusher.enqueue(b);
  await pusher.flush();
}
