/**
 * What a closed socket must stop pointing at. In Node 24, a TCP socket that has closed is still
 * kept by V8's young-generation collector (the scavenger) until the next full collection, for
 * reasons inside Node: each scavenge copies it and everything its listeners and read callback
 * reach, then promotes it all to the old generation. A tunnel's listeners reach the whole tunnel
 * (its splice, writers, handshake waits and promises), so every short tunnel was copied twice
 * and promoted: with `node bench/latency-gc.ts`, 28–32 % of what each agent allocated outlived
 * a scavenge (15–18 % since), and each scavenge paused the tunnels in flight for 1–2 ms (under
 * 1 ms since). Letting go of them when the socket closes leaves little more than the socket
 * itself to copy.
 * (A plain script that connects and closes sockets shows it too: 30-44 % outlive a scavenge
 * while their listeners hold a few KiB each, 4-7 % once the listeners are removed at close.)
 */
import type { EventEmitter } from 'node:events';
import type { SocketReader } from './socket-reader.ts';

/**
 * Module-level on purpose: an arrow function written where the socket is released would keep
 * that function's whole scope alive (V8 shares one context among a scope's closures), which is
 * the very thing being let go of.
 */
const ignoreError = () => {};

/**
 * Call from the socket's 'close' handler, once nothing will read from or write to it: removes
 * every listener (the ones later in this 'close' still run: Node calls a copy of the list), keeps
 * a no-op 'error' listener so that a late error cannot crash the agent, and clears `reader`'s
 * handler.
 */
export function letGoOfClosed(socket: EventEmitter, reader?: SocketReader): void {
  reader?.set(undefined);
  socket.removeAllListeners();
  socket.on('error', ignoreError);
}
