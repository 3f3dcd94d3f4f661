import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { telemetryRecordSchema } from '../../../src/mesh/telemetry-schema.ts';
import { ProcessSampler } from '../../../src/telemetry/app-source.ts';
import { SystemCollector } from '../../../src/telemetry/system-collector.ts';
import { sampleRecord, sinkLogger } from '../../helpers/telemetry.ts';

const STAT = (busy: number, idle: number) => `cpu  ${busy} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n`;
const NETDEV = (rx: number, tx: number) =>
  'Inter-|   Receive                                                |  Transmit\n' +
  ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
  `    lo: 999999 10 0 0 0 0 0 0 999999 10 0 0 0 0 0 0\n` +
  `  eth0: ${rx} 10 0 0 0 0 0 0 ${tx} 10 0 0 0 0 0 0\n`;

describe('system collector', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-proc-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'net'));
  const write = (f: string, text: string) => writeFileSync(join(dir, f), text);

  it('computes cpu %, memory, load and network rates from /proc', async () => {
    write('stat', STAT(100, 900));
    write('loadavg', '0.52 0.41 0.30 1/123 4567\n');
    write('meminfo', 'MemTotal:       8192000 kB\nMemFree:  100 kB\nMemAvailable:   6144000 kB\n');
    write('net/dev', NETDEV(1000, 2000));
    const { logger, lines } = sinkLogger();
    const c = new SystemCollector({ procRoot: dir, source: 'proc' }, { logger });
    const first = await c.sample(1_000_000);
    assert.equal(first.cpu.pct, null, 'no rate before a second sample');
    assert.deepEqual(first.cpu.load, [0.52, 0.41, 0.3]);
    assert.deepEqual(first.mem, { usedMb: 2000, totalMb: 8000 });
    assert.equal(first.netTotals.rxBytes, 1000, 'loopback is not counted');
    write('stat', STAT(400, 1600)); // +300 busy of +1000 total
    write('net/dev', NETDEV(11_000, 4000));
    const second = await c.sample(1_002_000);
    assert.equal(second.cpu.pct, 30);
    assert.deepEqual(second.net, { rxBps: 5000, txBps: 1000 });
    assert.ok(second.disk.totalGb && second.disk.totalGb > 0);
    assert.equal(lines.filter((l) => l.level === 40).length, 0);
    // The figures fit the gossiped schema.
    const { netTotals: _t, ...figures } = second;
    assert.ok(telemetryRecordSchema.safeParse(sampleRecord(figures)).success);
  });

  it('reuses a sample taken less than a second ago (an app-change publish right after a periodic one)', async () => {
    const { logger } = sinkLogger();
    const c = new SystemCollector({ procRoot: dir, source: 'proc' }, { logger });
    const a = await c.sample(5_000_000);
    assert.equal(await c.sample(5_000_300), a);
  });

  it('degrades to null and warns once per unreadable /proc file', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'plexus-noproc-'));
    try {
      const { logger, lines } = sinkLogger();
      const c = new SystemCollector({ procRoot: empty, source: 'proc' }, { logger });
      for (let i = 0; i < 3; i++) {
        const s = await c.sample(10_000_000 + i * 5000);
        assert.equal(s.cpu.pct, null);
        assert.deepEqual(s.mem, { usedMb: null, totalMb: null });
        assert.deepEqual(s.cpu.load, [null, null, null]);
        assert.deepEqual(s.net, { rxBps: null, txBps: null });
        const { netTotals: _t, ...figures } = s;
        assert.ok(
          telemetryRecordSchema.safeParse(sampleRecord(figures)).success,
          'a degraded record is still valid',
        );
      }
      const warns = lines.filter((l) => l.level === 40);
      assert.equal(warns.length, 4, 'stat, loadavg, meminfo, net/dev: once each');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("samples a live process's cpu and memory from /proc/PID", async (t) => {
    if (process.platform !== 'linux') return t.skip('needs /proc');
    const s = new ProcessSampler();
    const a = await s.sample(process.pid, 1);
    assert.equal(a.cpuPct, null);
    assert.ok(a.memMb && a.memMb > 10);
    const spinUntil = Date.now() + 200;
    while (Date.now() < spinUntil) {}
    const b = await s.sample(process.pid, Date.now() + 10_000);
    assert.ok(b.cpuPct !== null && b.cpuPct >= 0);
    assert.deepEqual(
      await s.sample(2 ** 30),
      { cpuPct: null, memMb: null },
      'a vanished pid is unknown, not an error',
    );
  });
});
