/** A pino logger that keeps its JSON lines, so tests can assert on what was logged (pino's sink()). */
import pino from 'pino';
import type { Logger } from '../../src/logging/index.ts';

/** A logger plus the parsed lines it wrote. */
export function sinkLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { logger, lines };
}

/** A complete, valid record for `node`. */
export function sampleRecord(over: Record<string, unknown> = {}) {
  return {
    node: 'web-1',
    peerId: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo',
    seq: 1,
    ts: Date.now(),
    version: '0.1.0',
    uptimeS: 12,
    addrs: ['/ip4/127.0.0.1/tcp/7070'],
    reach: 'direct' as const,
    cpu: { pct: 12.5, cores: 2, load: [0.5, 0.4, 0.3] as [number, number, number] },
    mem: { usedMb: 1000, totalMb: 4000 },
    disk: { usedGb: 10, totalGb: 100 },
    net: { rxBps: 100, txBps: 200 },
    apps: [
      {
        name: 'api',
        status: 'running' as const,
        pid: 1234,
        cpuPct: 1.5,
        memMb: 80,
        restarts: 0,
        release: 'r1',
      },
    ],
    services: [{ name: 'api', port: 8080 }],
    ...over,
  };
}
