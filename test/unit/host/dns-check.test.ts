/** The check that a host resolves to this node, with an injected resolver. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkResolvesHere } from '../../../src/host/dns-check.ts';

const mine = ['127.0.0.1', '203.0.113.7', '2001:db8::7'];
const resolving = (addrs: string[]) => async () => addrs;

describe('checkResolvesHere', () => {
  it('passes when every address is this node', async () => {
    await checkResolvesHere('a.test', resolving(['203.0.113.7']), mine);
    await checkResolvesHere('a.test', resolving(['::ffff:203.0.113.7', '2001:DB8::7']), mine);
  });

  it('refuses a name that points elsewhere, even in part, or does not resolve', async () => {
    for (const r of [
      resolving(['198.51.100.1']),
      resolving(['203.0.113.7', '198.51.100.1']),
      resolving([]),
      async () => {
        throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
      },
    ])
      await assert.rejects(checkResolvesHere('a.test', r, mine), { code: 'DNS_MISMATCH' });
  });
});
