/** Newline-delimited JSON over byte streams, with a per-line size limit. No agent imports. */
import type { Readable, Writable } from 'node:stream';
import { BadJsonError, LineTooLongError } from './errors.ts';

/**
 * Yields each complete line of `stream` as a string; throws LineTooLongError past `maxBytes`.
 * Given a Readable, returning early destroys it; pass `stream.iterator({ destroyOnReturn: false })`
 * to keep it open (the control socket answers before the client has finished sending).
 */
export async function* readLines(
  stream: Readable | AsyncIterable<Buffer>,
  maxBytes: number,
): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  let pendingLen = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      const part = chunk.subarray(start, nl);
      if (pendingLen + part.length > maxBytes) throw new LineTooLongError(maxBytes);
      const line = pendingLen ? Buffer.concat([...pending, part]).toString('utf8') : part.toString('utf8');
      pending = [];
      pendingLen = 0;
      start = nl + 1;
      if (line.trim()) yield line;
    }
    const rest = chunk.subarray(start);
    if (rest.length) {
      pendingLen += rest.length;
      if (pendingLen > maxBytes) throw new LineTooLongError(maxBytes);
      pending.push(Buffer.from(rest));
    }
  }
  if (pendingLen) {
    const line = Buffer.concat(pending).toString('utf8');
    if (line.trim()) yield line;
  }
}

/** Parses JSON, turning a syntax error into a BadJsonError. */
export function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new BadJsonError();
  }
}

/** Writes one JSON line, resolving once the stream can take more (backpressure). */
export function writeJsonLine(stream: Writable, value: unknown): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  const ok = stream.write(`${JSON.stringify(value)}\n`);
  if (ok) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}
