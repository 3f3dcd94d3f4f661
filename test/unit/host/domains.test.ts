/** The edge in telemetry: bounded however many domains fail, and valid against the record schema. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { edgeForTelemetry } from '../../../src/host/domains.ts';
import { Edge, HostDaemons, hostMigrations } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/logging/index.ts';
import { telemetryRecordSchema } from '../../../src/mesh/telemetry-schema.ts';
import { openStore } from '../../../src/store/index.ts';

describe('edgeForTelemetry', () => {
  it('carries the count and at most a few short certificate problems', () => {
    const db = openStore(':memory:', hostMigrations);
    const logger = silentLogger();
    const daemons = new HostDaemons({ logDir: '/nonexistent', systemd: false }, { db, logger });
    const edge = new Edge(
      { dir: '/nonexistent' },
      { db, logger, daemons, upstreams: { upstreamOf: () => 1 } },
    );
    assert.equal(edgeForTelemetry(edge), undefined);
    edge.repo.saveSettings({ httpPort: 80, httpsPort: 443, issuer: 'acme', email: null }, []);
    for (let i = 0; i < 500; i++) {
      const host = `${'h'.repeat(60)}.${'x'.repeat(60)}.${'y'.repeat(60)}.n${i}.test`;
      edge.repo.addDomain(host, 'a'.repeat(63));
      edge.repo.setCert(host, { cert: 'error', expires: null, issuer: null, error: 'e'.repeat(200) });
    }
    const part = edgeForTelemetry(edge)!;
    assert.equal(part.domains, 500);
    assert.equal(part.certProblems.length, 4);
    assert.ok(JSON.stringify(part).length < 2048, `${JSON.stringify(part).length} bytes`);
    const edgeSchema = telemetryRecordSchema.shape.edge;
    assert.equal(edgeSchema.safeParse(part).success, true);
    // A reason with line breaks (a TLS library's, an ACME server's) becomes one printable line.
    edge.repo.setCert(part.certProblems[0].host, {
      cert: 'error',
      expires: null,
      issuer: null,
      error: 'a\nb\x1b[2J',
    });
    const again = edgeForTelemetry(edge)!;
    assert.equal(again.certProblems[0].error, 'a b [2J');
    assert.equal(edgeSchema.safeParse(again).success, true);
    db.close();
  });
});
