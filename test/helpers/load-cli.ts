/**
 * test/helpers/load.ts as a process, for a load that must run in another network namespace (a
 * container's, made by the test): `node load-cli.ts PORT MAX_MS`. It prints the number of samples
 * every 50 ms (`n N`), and once its stdin closes (or MAX_MS passes) the final `{sent, failed}`.
 */
import { failures, startLoad } from './load.ts';

const [port, maxMs] = process.argv.slice(2).map(Number);
const load = startLoad({ port, concurrency: 4, maxRequests: 50_000, maxMs });
const tick = setInterval(() => process.stdout.write(`n ${load.samples.length}\n`), 50);
let done = false;
const finish = async () => {
  if (done) return;
  done = true;
  clearInterval(tick);
  const samples = await load.stop();
  process.stdout.write(`${JSON.stringify({ sent: samples.length, failed: failures(samples) })}\n`);
};
process.stdin.on('end', () => void finish());
process.stdin.resume();
setTimeout(() => void finish(), maxMs).unref();
