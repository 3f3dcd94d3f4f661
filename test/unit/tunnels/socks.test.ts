/** The SOCKS5 proxy (src/tunnels/socks.ts): tunnel refusals as RFC 1928 reply codes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SocksReply, socksReplyFor } from '../../../src/tunnels/socks.ts';

test('SOCKS reply codes follow RFC 1928', () => {
  assert.equal(socksReplyFor('UNKNOWN_NODE'), SocksReply.hostUnreachable);
  assert.equal(socksReplyFor('PEER_UNREACHABLE'), SocksReply.hostUnreachable);
  assert.equal(socksReplyFor('TARGET_REFUSED'), SocksReply.connectionRefused);
  assert.equal(socksReplyFor('UNKNOWN_SERVICE'), SocksReply.connectionRefused);
  assert.equal(socksReplyFor('PORT_NOT_EXPOSED'), SocksReply.notAllowed);
  assert.equal(socksReplyFor('TUNNEL_LIMIT'), SocksReply.generalFailure);
});
