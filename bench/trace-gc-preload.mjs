/**
 * Preload for bench/latency-gc.ts: turns on V8's GC trace in `plexus agent` processes only (not in
 * anything an agent runs that inherits its NODE_OPTIONS). Passed with `NODE_OPTIONS=--import …`.
 */
import { setFlagsFromString } from 'node:v8';

if (process.argv.includes('agent')) {
  setFlagsFromString('--trace-gc');
  setFlagsFromString('--trace-gc-nvp');
}
