/** Request bodies read whole, with a size limit and a deadline (the slow-loris guard). */
import type { IncomingMessage } from 'node:http';
import { BadJsonBodyError, BodyTimeoutError, BodyTooLargeError } from './errors.ts';

/**
 * Reads a request body up to `maxBytes` within `timeoutMs`. A body declared too large is
 * refused before it is read (and drained, so the answer reaches the client); one that turns
 * out too large, or too slow, is refused and its connection dropped.
 */
export function readLimited(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      reject(new BodyTooLargeError(maxBytes));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      reject(new BodyTimeoutError(timeoutMs));
      req.destroy();
    }, timeoutMs);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        clearTimeout(timer);
        reject(new BodyTooLargeError(maxBytes));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Parses a body as JSON; a syntax error is the caller's (400 BAD_JSON), not ours. */
export function parseJsonBody<T>(buf: Buffer): T {
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch {
    throw new BadJsonBodyError();
  }
}
