/**
 * Fixes the `xsalsa20` package that @libp2p/pnet encrypts every byte with. All its instances
 * share one WebAssembly memory, but each caches a view of it; when one instance grows the
 * memory, the others' views are detached (length 0), and their next `update()` "grows" the
 * memory again by the whole input size. Every connection has two instances, so under traffic
 * the memory ratchets up to its 1000-page (62.5 MiB) maximum, and from then on any large write
 * throws `RangeError: WebAssembly.Memory.grow(): Maximum memory size exceeded`, which aborts
 * the connection (found by bench/tunnel.ts: a forward was cut after ~100 MB). The fix gives a
 * stale instance a fresh view of the current memory before it computes anything.
 * Imported for its effect by node.ts, before any connection exists.
 */
import { createRequire } from 'node:module';

interface WasmXor {
  _memory: Uint8Array;
  realloc(size: number): void;
  update(input: Uint8Array, output: Uint8Array): void;
  finalize(): void;
}

const require = createRequire(import.meta.url);
const XSalsa20 = require('xsalsa20') as (
  nonce: Uint8Array,
  key: Uint8Array,
) => { _xor: unknown; finalize(): void };
const probe = XSalsa20(new Uint8Array(24), new Uint8Array(32));
const proto = Object.getPrototypeOf(probe._xor) as WasmXor & { plexusFixed?: boolean };
probe.finalize();

// Only the WebAssembly implementation has the shared memory (the JS fallback has no realloc).
if (typeof proto.realloc === 'function' && !proto.plexusFixed) {
  let current: ArrayBuffer | undefined;
  const fresh = (self: WasmXor) => {
    if (self._memory.byteLength === 0 && current && current.byteLength > 0)
      self._memory = new Uint8Array(current);
  };
  const { realloc, update, finalize } = proto;
  proto.realloc = function (this: WasmXor, size: number) {
    fresh(this);
    realloc.call(this, size);
    current = this._memory.buffer as ArrayBuffer;
  };
  proto.update = function (this: WasmXor, input: Uint8Array, output: Uint8Array) {
    fresh(this);
    update.call(this, input, output);
  };
  proto.finalize = function (this: WasmXor) {
    fresh(this);
    finalize.call(this);
  };
  proto.plexusFixed = true;
}
