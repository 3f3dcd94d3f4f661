/** Host names the edge accepts: strictly valid DNS names a certificate can be issued for. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeHost } from '../../../src/host/host-name.ts';

describe('normalizeHost', () => {
  it('accepts names and lower-cases them', () => {
    assert.equal(normalizeHost('App.Example.COM'), 'app.example.com');
    assert.equal(normalizeHost('a-b.x9.test'), 'a-b.x9.test');
    assert.equal(normalizeHost(`${'a'.repeat(63)}.test`), `${'a'.repeat(63)}.test`);
  });

  it('refuses what no CA would issue for, with INVALID_HOST', () => {
    const bad = [
      '',
      'localhost',
      'a..test',
      '.a.test',
      'a.test.',
      '-a.test',
      'a-.test',
      'a_b.test',
      'ä.test',
      'a b.test',
      '*.a.test',
      '1.2.3.4',
      '::1',
      '[::1]',
      'a.123',
      `${'a'.repeat(64)}.test`,
      `${'abcdefghi.'.repeat(26)}test`,
      'a.test/path',
      'a.test:443',
    ];
    for (const h of bad) assert.throws(() => normalizeHost(h), { code: 'INVALID_HOST' }, JSON.stringify(h));
  });
});
