import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeExposition } from '../../../src/telemetry/metrics.ts';

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
