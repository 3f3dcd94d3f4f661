/**
 * Measures signed-command latency from outside an agent: signs `node.status` for TARGET, POSTs
 * it to an agent's `/v1/commands` over a keep-alive connection, reads the NDJSON reply and checks
 * every frame's signature, RUNS times in a row. Prints one JSON line `{target, runs, p50, p99,
 * mean}` (ms). Usage: node bench/command-client.ts URL KEY_FILE TARGET_PEER_ID [RUNS]
 * (run inside a network namespace by bench/commands.ts to reach an agent there).
 */
import { Agent, request } from 'node:http';
import { signCommand, verifyFrame } from '../src/commands/envelope.ts';
import { readKeyFile } from '../src/crypto/ed25519.ts';
import { ed25519KeyOfPeerId } from '../src/crypto/peer-key.ts';

const [url, keyFile, target, runsText] = process.argv.slice(2);
const runs = Number(runsText ?? 200);
const signer = readKeyFile(keyFile);
const targetKey = ed25519KeyOfPeerId(target)!;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function once(): Promise<number> {
  const { envelope, payload } = signCommand(signer, { target, action: 'node.status' });
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/commands`,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-ndjson' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => {
          const ms = performance.now() - t0;
          const frames = body.split('\n').filter(Boolean);
          try {
            frames.forEach((f, i) => {
              const frame = verifyFrame(targetKey, target, payload.id, i, JSON.parse(f));
              if (frame.type === 'error') throw new Error(frame.error.message);
            });
          } catch (err) {
            reject(err);
            return;
          }
          resolve(ms);
        });
      },
    );
    req.on('error', reject);
    req.end(`${JSON.stringify(envelope)}\n`);
  });
}

for (let i = 0; i < 10; i++) await once(); // warm-up: connections, JIT
const times: number[] = [];
for (let i = 0; i < runs; i++) times.push(await once());
times.sort((a, b) => a - b);
const pick = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
const r = (n: number) => Math.round(n * 100) / 100;
process.stdout.write(
  `${JSON.stringify({ target, runs, p50: r(pick(0.5)), p99: r(pick(0.99)), mean: r(times.reduce((a, b) => a + b, 0) / runs) })}\n`,
);
agent.destroy();
