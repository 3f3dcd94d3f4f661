/**
 * The installed xsalsa20 carries patches/xsalsa20+*.patch: when one instance grows the shared
 * WebAssembly memory, the others take a fresh view of it instead of growing it again. Unpatched,
 * two instances written to in turn ratchet the memory up to its 62.5 MiB maximum within ~63 MB
 * and then throw (bench/patches.ts); pnet gives every connection two.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';

type XSalsa20 = (
  n: Uint8Array,
  k: Uint8Array,
) => { update(b: Uint8Array): Uint8Array; _xor: { _memory: Uint8Array } };
const XSalsa20 = createRequire(import.meta.url)('xsalsa20') as XSalsa20;

describe('xsalsa20 shared memory', () => {
  it('stays bounded when two instances grow it in turn', () => {
    const key = new Uint8Array(32);
    const [a, b] = [XSalsa20(new Uint8Array(24).fill(1), key), XSalsa20(new Uint8Array(24).fill(2), key)];
    const sizes = [64 << 10, 256 << 10, 1 << 20, 4 << 20];
    let bytes = 0;
    for (let i = 0; bytes < 100e6; i++) {
      const input = new Uint8Array(sizes[(i >> 1) % sizes.length]);
      (i % 2 ? a : b).update(input);
      bytes += input.length;
    }
    // The largest write and the instances' state fit in well under 8 MiB.
    const memory = XSalsa20(new Uint8Array(24), key)._xor._memory.byteLength;
    assert.ok(memory < 8 << 20, `wasm memory grew to ${memory} bytes`);
  });

  it('keeps the output of every instance right while they grow the memory in turn', () => {
    const x = (n: number) => XSalsa20(new Uint8Array(24).fill(n), new Uint8Array(32));
    const [a, b, ref] = [x(0), x(1), x(0)];
    // Unpatched, alternating 1..7 MiB updates exhaust the 62.5 MiB memory within a few rounds.
    for (let i = 0; i < 100; i++) {
      const size = ((i % 7) + 1) << 20;
      b.update(new Uint8Array(size));
      const got = a.update(new Uint8Array(size));
      assert.deepEqual(Buffer.from(got), Buffer.from(ref.update(new Uint8Array(size))));
    }
  });
});
