/**
 * The ends of bench/tunnel.ts, run as their own processes (and, for the relayed path, inside
 * network namespaces), so that the bench's own event loop never sits in the measured path.
 *
 *   node bench/tunnel-peer.ts source PORT BYTES    serve BYTES to every client, then FIN
 *   node bench/tunnel-peer.ts echo PORT            echo every byte back
 *                                                  (PORT 0: any free port; prints the port)
 *   node bench/tunnel-peer.ts sink HOST PORT BYTES connect, read until FIN, print {mbps, ms, bytes}
 *   node bench/tunnel-peer.ts latency HOST PORT N  N × (connect, write 1 byte, read it back,
 *                                                  close); print {p50, p99, mean} in ms
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);

function serve(port: number, onConn: (s: Socket) => void): void {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => {});
    onConn(s);
  });
  // Port 0: the kernel picks a free one, so no other process can race us for it.
  server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () =>
    process.stdout.write(`${(server.address() as { port: number }).port}\n`),
  );
}

if (mode === 'source') {
  const total = Number(b);
  const block = randomBytes(1024 * 1024);
  serve(Number(a), (s) => {
    let left = total;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, block.length);
        left -= n;
        if (!s.write(n === block.length ? block : block.subarray(0, n))) return void s.once('drain', pump);
      }
      s.end();
    };
    s.resume(); // discard anything the client sends
    s.on('close', () => {
      if (left > 0) process.stderr.write(`source: client left with ${left} bytes unsent\n`);
    });
    pump();
  });
} else if (mode === 'echo') {
  serve(Number(a), (s) => s.pipe(s));
} else if (mode === 'sink') {
  const expected = Number(c);
  const t0 = process.hrtime.bigint();
  const s = connect({ host: a, port: Number(b), noDelay: true });
  let bytes = 0;
  s.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  s.on('error', (err) => {
    process.stdout.write(`${JSON.stringify({ error: err.message, bytes })}\n`);
    process.exit(1);
  });
  s.on('end', () => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const ok = bytes === expected;
    process.stdout.write(`${JSON.stringify({ mbps: bytes / 1e6 / (ms / 1000), ms, bytes, ok })}\n`);
    process.exit(ok ? 0 : 1);
  });
} else if (mode === 'latency') {
  const n = Number(c);
  const times: number[] = [];
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const s = connect({ host: a, port: Number(b), noDelay: true }, () => s.write('x'));
      s.once('data', () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        s.destroy();
        resolve(ms);
      });
      s.once('error', reject);
      s.once('end', () => reject(new Error('closed before the echo')));
    });
  for (let i = 0; i < Math.min(20, n); i++) await one(); // warm-up: JIT, connection setup
  for (let i = 0; i < n; i++) times.push(await one());
  times.sort((x, y) => x - y);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  const mean = times.reduce((x, y) => x + y, 0) / times.length;
  process.stdout.write(`${JSON.stringify({ p50: q(0.5), p99: q(0.99), mean })}\n`);
} else {
  process.stderr.write('usage: tunnel-peer.ts source|echo|sink|latency …\n');
  process.exit(2);
}
