/** Caddy's reasons for failed issuances, read from its JSON log (Caddy 2.6's lines, verbatim). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { issuanceFailures } from '../../../src/host/caddy-log.ts';

const refused =
  '{"level":"error","ts":1796531669.2575285,"logger":"tls.obtain","msg":"could not get certificate from issuer","identifier":"blocked.test","issuer":"127.0.0.1:14000-dir","error":"HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - Order included an identifier for which issuance is forbidden by policy: \\"blocked.test\\""}';
const retry =
  '{"level":"error","ts":1796531669.2576213,"logger":"tls.obtain","msg":"will retry","error":"[blocked.test] Obtain: [blocked.test] creating new order: HTTP 400","attempt":1,"retrying_in":60}';
const obtained =
  '{"level":"info","ts":1796531669.8578606,"logger":"tls.obtain","msg":"certificate obtained successfully","identifier":"blocked.test"}';

describe('issuanceFailures', () => {
  it("keeps the CA's answer for a host, also behind the supervisor's time stamp", () => {
    const f = issuanceFailures([`2026-12-06T04:34:29.257Z ${refused}`, retry]);
    assert.match(f.get('blocked.test') ?? '', /^HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - /);
    assert.equal(f.size, 1);
  });

  it('forgets a failure once the certificate was obtained', () => {
    assert.equal(issuanceFailures([refused, obtained]).size, 0);
    assert.equal(issuanceFailures([obtained, refused]).size, 1);
  });

  it('ignores what is not a tls.obtain error: other loggers, cut or hostile lines', () => {
    const lines = [
      refused.slice(0, 80),
      '{"level":"error","logger":"http.log","msg":"x","identifier":"a.test","error":"no"}',
      '{"level":"error","logger":"tls.obtain","identifier":{"x":1},"error":"no"}',
      '{"level":"error","logger":"tls.obtain","identifier":"b.test","error":42}',
      'tls.obtain not json',
      '',
    ];
    assert.equal(issuanceFailures(lines).size, 0);
  });
});
