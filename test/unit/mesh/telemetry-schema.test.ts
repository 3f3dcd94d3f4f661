import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TELEMETRY_BYTES } from '../../../src/mesh/constants.ts';
import { decodeTelemetry } from '../../../src/mesh/telemetry.ts';
import { sampleRecord } from '../../helpers/telemetry.ts';

const enc = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('telemetry record schema', () => {
  it('accepts a complete record', () => {
    const r = decodeTelemetry(enc(sampleRecord()));
    assert.equal(r?.node, 'web-1');
    assert.equal(r?.apps[0].status, 'running');
  });

  it('accepts unknown figures as null (a /proc file that could not be read)', () => {
    const r = decodeTelemetry(
      enc(
        sampleRecord({
          cpu: { pct: null, cores: 2, load: [null, null, null] },
          net: { rxBps: null, txBps: null },
        }),
      ),
    );
    assert.equal(r?.cpu.pct, null);
  });

  it('strips unknown top-level keys instead of storing them', () => {
    const r = decodeTelemetry(enc(sampleRecord({ extra: 'from a newer agent' })));
    assert.ok(r);
    assert.equal((r as Record<string, unknown>).extra, undefined);
  });

  for (const [what, over] of [
    ['a missing section', { mem: undefined }],
    ['a cpu percent over 100', { cpu: { pct: 101, cores: 2, load: [0, 0, 0] } }],
    ['a string where a number belongs', { disk: { usedGb: '10', totalGb: 100 } }],
    [
      'an unknown app status',
      { apps: [{ name: 'x', status: 'zombie', pid: 1, cpuPct: 0, memMb: 0, restarts: 0, release: null }] },
    ],
    [
      'an extra key inside an app',
      {
        apps: [
          { name: 'x', status: 'running', pid: 1, cpuPct: 0, memMb: 0, restarts: 0, release: null, evil: 1 },
        ],
      },
    ],
    ['a bad port', { services: [{ name: 'db', port: 70000 }] }],
    ['a bad reach', { reach: 'teleported' }],
    ['negative seq', { seq: -1 }],
  ] as const) {
    it(`rejects ${what}`, () => {
      assert.equal(decodeTelemetry(enc(sampleRecord(over as Record<string, unknown>))), undefined);
    });
  }

  it('rejects too many apps and anything over 16 KiB', () => {
    const app = { name: 'a', status: 'running', pid: 1, cpuPct: 0, memMb: 0, restarts: 0, release: null };
    assert.equal(
      decodeTelemetry(enc(sampleRecord({ apps: Array.from({ length: 65 }, () => app) }))),
      undefined,
    );
    // Every field within its own bounds, but 32 long addresses push the whole over the limit.
    const addrs = Array.from({ length: 32 }, (_, i) => `/dns4/${'a'.repeat(500)}${i}/tcp/7070`.slice(0, 512));
    const big = enc(sampleRecord({ addrs }));
    assert.ok(big.byteLength > MAX_TELEMETRY_BYTES);
    assert.ok(
      decodeTelemetry(enc(sampleRecord({ addrs: addrs.slice(0, 20) }))),
      'the same record, smaller, passes',
    );
    assert.equal(decodeTelemetry(big), undefined);
  });

  it('rejects malformed JSON', () => {
    assert.equal(decodeTelemetry(Buffer.from('{"node":')), undefined);
  });
});
