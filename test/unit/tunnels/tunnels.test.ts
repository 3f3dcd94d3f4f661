/** The mesh's xsalsa20 (pnet) fix, kept here until it moves with the mesh's patches. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

test('xsalsa20 (pnet) keeps working when instances grow the shared WASM memory in turn', async () => {
  const XSalsa20 = createRequire(import.meta.url)('xsalsa20') as (
    n: Uint8Array,
    k: Uint8Array,
  ) => { update(b: Uint8Array): Uint8Array };
  const [a, b, ref] = [x(0), x(1), x(0)];
  function x(n: number) {
    return XSalsa20(new Uint8Array(24).fill(n), new Uint8Array(32));
  }
  // Unfixed, alternating 1..7 MiB updates exhaust the 62.5 MiB memory within a few rounds.
  for (let i = 0; i < 100; i++) {
    const size = ((i % 7) + 1) << 20;
    b.update(new Uint8Array(size));
    const got = a.update(new Uint8Array(size));
    assert.deepEqual(Buffer.from(got), Buffer.from(ref.update(new Uint8Array(size))));
  }
});
