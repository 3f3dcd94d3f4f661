/**
 * The edge in `plexus top` and `plexus peers` (issue 18): a compact column (domains, and how many
 * have a certificate problem) and one line per problem. The text comes from other nodes, so a
 * hostile node's control characters are refused by the record schema and never reach a terminal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { certProblemLines, edgeCell } from '../../../src/cli/telemetry-format.ts';
import { render } from '../../../src/cli/top.ts';
import { telemetryRecordSchema } from '../../../src/mesh/telemetry-schema.ts';
import { sampleRecord } from '../../helpers/telemetry.ts';

const problem = (error: string, host = 'shop.example.com') => ({
  host,
  app: 'shop',
  cert: 'error' as const,
  error,
});
const node = (telemetry: Record<string, unknown>) => ({
  name: 'web-1',
  self: true,
  state: 'online',
  connection: 'self',
  rttMs: null,
  telemetry,
});

describe('the edge in top and peers', () => {
  it('shows "-" without an edge, the domain count, and the number of certificate problems', () => {
    assert.equal(edgeCell(sampleRecord()), '-');
    assert.equal(edgeCell(undefined), '-');
    assert.equal(edgeCell(sampleRecord({ edge: { domains: 3, certProblems: [] } })), '3');
    assert.equal(edgeCell(sampleRecord({ edge: { domains: 3, certProblems: [problem('x')] } })), '3 1!');
  });

  it('top prints the column and each problem with its reason on a line of its own', () => {
    const why = 'TLS handshake failed: tlsv1 alert internal error';
    const record = sampleRecord({ edge: { domains: 2, certProblems: [problem(why)] } });
    assert.equal(telemetryRecordSchema.safeParse(record).success, true);
    const screen = render([node(record)], Date.now());
    assert.match(screen, /^NODE\s.*\sAPPS\s+EDGE\s+UP\s/m);
    assert.match(screen, /^web-1\*\s.*\s1\/1\s+2 1!\s/m);
    assert.match(
      screen,
      new RegExp(`^certificate problems:\\n  web-1: shop\\.example\\.com \\(shop\\) error: ${why}$`, 'm'),
    );
    assert.doesNotMatch(render([node(sampleRecord())], Date.now()), /certificate problems/);
  });

  it('a record whose problem text carries control characters or whose host is not a name is refused', () => {
    for (const edge of [
      { domains: 1, certProblems: [problem('ok\x1b]0;pwned\x07\x1b[2J')] },
      { domains: 1, certProblems: [problem('two\nlines')] },
      { domains: 1, certProblems: [problem('fine', 'Évil\x1b[31m.test')] },
      { domains: 1, certProblems: [problem('e'.repeat(101))] },
      { domains: -1, certProblems: [] },
    ])
      assert.equal(
        telemetryRecordSchema.safeParse(sampleRecord({ edge })).success,
        false,
        JSON.stringify(edge),
      );
  });

  it('prints control characters as spaces even from a record that skipped the schema', () => {
    const [line] = certProblemLines([
      {
        name: 'n\x1b[2J',
        telemetry: { edge: { domains: 1, certProblems: [problem('a\x1b]0;x\x07b\r\nc')] } },
      },
    ]);
    assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/);
    assert.match(line, /error: a \]0;x b {2}c$/);
  });
});
