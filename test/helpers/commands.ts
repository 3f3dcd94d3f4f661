/**
 * Helpers for signed-command tests: sign envelopes with a key file, POST raw bodies to an
 * agent's API, and read NDJSON frames back. Traffic goes only to 127.0.0.1.
 */
import { request } from 'node:http';
import { signCommand } from '../../src/commands/envelope.ts';
import { readKeyFile } from '../../src/crypto/ed25519.ts';

/** A raw HTTP answer, with NDJSON frames parsed when the body is a stream of them. */
export interface RawReply {
  status: number;
  type: string;
  body: string;
  frames: { type: string; data?: unknown; result?: unknown; error?: { code: string; message: string } }[];
}

/** POSTs `body` (or a slow writer) to `url` and collects the reply. */
export function post(
  url: string,
  body: string | ((req: import('node:http').ClientRequest) => void),
  timeoutMs = 30_000,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      // A fresh connection per request: the server drops connections whose body it refused.
      { method: 'POST', agent: false, headers: { 'content-type': 'application/x-ndjson' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => {
          const type = String(res.headers['content-type'] ?? '');
          const frames = type.startsWith('application/x-ndjson')
            ? text
                .split('\n')
                .filter(Boolean)
                .map((l) => JSON.parse(l))
            : [];
          resolve({ status: res.statusCode ?? 0, type, body: text, frames });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (typeof body === 'string') req.end(body);
    else body(req);
  });
}

/** GETs JSON from `url`. */
export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  return (await res.json()) as T;
}

/** Signs a command with the key in `keyFile`. */
export function sign(
  keyFile: string,
  cmd: { target: string; action: string; args?: Record<string, unknown>; ttlS?: number },
  now = Date.now(),
) {
  return signCommand(readKeyFile(keyFile), cmd, now);
}

/** The last frame of a reply (the result or error). */
export function last(reply: RawReply) {
  return reply.frames.at(-1);
}
