/**
 * Caddy's admin API over its unix socket, the only way the agent drives Caddy (issue 18). The
 * socket sits in a folder only root and Caddy's group may enter, so no app (and no other local
 * user) can rewrite the edge, unlike Caddy's default TCP endpoint on localhost:2019.
 */
import { http } from '../core/http-modules.ts';
import { ADMIN_MAX_BYTES, ADMIN_RETRIES, ADMIN_RETRY_MS, ADMIN_TIMEOUT_MS } from './constants.ts';
import { EdgeUnavailableError } from './errors.ts';

/** One answer of the admin API. */
export interface AdminAnswer {
  status: number;
  body: string;
}

/**
 * Calls the admin API at `socketPath`; throws EdgeUnavailableError when Caddy does not answer.
 * A refused connection is tried again for a moment: Caddy re-opens its admin socket after each
 * /load, so a call right after one can find it closed.
 */
export async function adminCall(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<AdminAnswer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await adminOnce(socketPath, method, path, body);
    } catch (err) {
      const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
      if (attempt >= ADMIN_RETRIES || (code !== 'ECONNREFUSED' && code !== 'ENOENT')) throw err;
      await new Promise((r) => setTimeout(r, ADMIN_RETRY_MS));
    }
  }
}

function adminOnce(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<AdminAnswer> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path,
        // Caddy checks the Host of admin requests (DNS rebinding); on a unix socket it allows
        // only an empty one (Go still wants the header present).
        setHost: false,
        headers: {
          host: '',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: ADMIN_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > ADMIN_MAX_BYTES) {
            req.destroy();
            reject(new EdgeUnavailableError('EDGE_ADMIN_FAILED', 'Caddy admin answer too large'));
          } else chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', (err) => reject(fail(err)));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(fail(err)));
    req.end(payload);
  });
}

function fail(err: Error): EdgeUnavailableError {
  const code = (err as NodeJS.ErrnoException).code;
  return new EdgeUnavailableError(
    'EDGE_ADMIN_FAILED',
    `Caddy's admin socket does not answer (${code ?? err.message}); see plexus edge status`,
    err,
  );
}

/** Loads a whole config; Caddy's own error (a port taken, a bad field) in one line on failure. */
export async function adminLoad(socketPath: string, config: unknown): Promise<void> {
  const r = await adminCall(socketPath, 'POST', '/load', config);
  if (r.status !== 200) {
    let why = r.body;
    try {
      why = (JSON.parse(r.body) as { error?: string }).error ?? r.body;
    } catch {
      // not JSON: keep the text
    }
    throw new EdgeUnavailableError(
      'EDGE_ADMIN_FAILED',
      `Caddy refused the config: ${why.trim().split('\n')[0].slice(0, 300)}`,
    );
  }
}

/** True when Caddy runs a config carrying `@id` `id` (a restarted Caddy has none). */
export async function adminHasId(socketPath: string, id: string): Promise<boolean> {
  return (await adminCall(socketPath, 'GET', `/id/${encodeURIComponent(id)}`)).status === 200;
}
