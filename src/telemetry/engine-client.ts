/**
 * A small client of the Docker Engine API (also Podman's Docker-compatible API) over its unix
 * socket, with node:http: a GET that answers JSON, bounded in size and time. The engine is
 * another program on the host, root's or its own: its answers are parsed defensively (size cap,
 * timeout, JSON errors and unexpected shapes become a failed call, never a crash).
 */
import { http } from '../core/http-modules.ts';
import { ContainerEngineError } from './errors.ts';

/** Limits of one call. */
export interface EngineCallLimits {
  /** The whole answer must arrive within this. */
  timeoutMs: number;
  /** Larger answers are refused (the connection is cut as soon as they pass it). */
  maxBytes: number;
}

/** GETs `path` from the engine at `socketPath` and parses the JSON answer. */
export function engineGet(socketPath: string, path: string, limits: EngineCallLimits): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(new ContainerEngineError(`${path.split('?')[0]}: ${why}`));
    };
    const req = http.request({ socketPath, path, method: 'GET', headers: { host: 'docker' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limits.maxBytes) return fail(`answer larger than ${limits.maxBytes} bytes`);
        chunks.push(c);
      });
      res.on('error', (err) => fail(err.message));
      res.on('end', () => {
        if (settled) return;
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          settled = true;
          clearTimeout(timer);
          resolve(body);
        } catch {
          fail('answer is not JSON');
        }
      });
    });
    const timer = setTimeout(
      () => fail(`no complete answer within ${limits.timeoutMs} ms`),
      limits.timeoutMs,
    );
    timer.unref();
    req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}
