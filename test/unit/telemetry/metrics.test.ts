import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TelemetryCounts, TelemetryRecord } from '../../../src/mesh/index.ts';
import {
  createMetricsRegistry,
  type MetricsSource,
  normalizeExposition,
} from '../../../src/telemetry/metrics.ts';
import { sampleRecord } from '../../helpers/telemetry.ts';

describe('metrics exposition', () => {
  it("renames or drops the names promtool refuses in libp2p's and prom-client's metrics", () => {
    const text = [
      '# HELP nodejs_active_handles Handles.',
      '# TYPE nodejs_active_handles gauge',
      'nodejs_active_handles{type="Socket"} 3',
      '# HELP nodejs_active_handles_total Total handles.',
      '# TYPE nodejs_active_handles_total gauge',
      'nodejs_active_handles_total 3',
      '# HELP libp2p_protocol_streams_total Streams.',
      '# TYPE libp2p_protocol_streams_total gauge',
      'libp2p_protocol_streams_total{protocol="x"} 2',
      '# HELP libp2p_kad_bucket_total Buckets.',
      '# TYPE libp2p_kad_bucket_total gauge',
      'libp2p_kad_bucket_total 4',
      '# HELP libp2p_ping_time_milliseconds Ping.',
      '# TYPE libp2p_ping_time_milliseconds gauge',
      'libp2p_ping_time_milliseconds{libp2p_ping_time_milliseconds="avg"} 45',
      '# HELP plexus_x_total A counter.',
      '# TYPE plexus_x_total counter',
      'plexus_x_total 1',
      '',
    ].join('\n');
    const out = normalizeExposition(text);
    assert.ok(!out.includes('nodejs_active_handles_total'), 'a duplicate sum is dropped');
    assert.match(out, /^nodejs_active_handles\{type="Socket"\} 3$/m);
    assert.match(out, /^# TYPE libp2p_protocol_streams gauge$/m);
    assert.match(out, /^libp2p_protocol_streams\{protocol="x"\} 2$/m);
    assert.match(out, /^libp2p_kad_buckets 4$/m, 'no reserved _bucket suffix');
    assert.match(out, /^libp2p_ping_time_seconds\{libp2p_ping_time_milliseconds="avg"\} 0.045$/m);
    assert.match(out, /^plexus_x_total 1$/m, 'counters keep _total');
  });
});

describe('metrics registry', () => {
  it("shows the fleet's figures only while a source is attached", async () => {
    const metrics = createMetricsRegistry();
    const before = (await metrics.render()).body;
    assert.doesNotMatch(before, /^plexus_node_cpu_percent\{/m, 'no source yet: no node figures');
    const source: MetricsSource = {
      self: () => 'web-1',
      records: () => [sampleRecord() as TelemetryRecord],
      peers: () => [{ state: 'online', connection: 'direct' }],
      counts: (): TelemetryCounts => ({
        published: 3,
        accepted: 2,
        ignored: 1,
        rejected: {} as TelemetryCounts['rejected'],
      }),
      gossipReceived: () => new Map([['plexus/telemetry/1', 5]]),
      panel: () => undefined,
    };
    const detach = metrics.attach(source);
    const during = (await metrics.render()).body;
    assert.match(during, /^plexus_node_cpu_percent\{node="web-1"\} 12.5$/m);
    assert.match(during, /^plexus_mesh_peers\{state="online"\} 1$/m);
    assert.match(during, /^plexus_telemetry_records_published_total 3$/m);
    detach();
    const after = (await metrics.render()).body;
    assert.doesNotMatch(after, /^plexus_node_cpu_percent\{/m, 'detached: no node figures');
  });
});
