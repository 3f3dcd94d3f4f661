/** Small HTTP pieces of `plexus ui`'s server: error bodies, JSON answers, bounded JSON bodies. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { UiRequestError as BodyError } from '../errors.ts';

/** The one error shape every route answers with, as the agent's API does. */
export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/** Answers JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

/** Answers an error and closes the connection once it is written (the body may be unread). */
export function refuse(res: ServerResponse, status: number, code: string, message: string): void {
  res.setHeader('connection', 'close');
  sendJson(res, status, errorBody(code, message));
}

/** Reads a JSON object body of at most `max` bytes (refusing a larger one as soon as it shows). */
export async function readJsonBody(req: IncomingMessage, max: number): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '');
  if (!type.startsWith('application/json'))
    throw new BodyError(415, 'UI_BAD_CONTENT_TYPE', 'send the body as application/json');
  if (Number(req.headers['content-length'] ?? 0) > max)
    throw new BodyError(413, 'UI_BODY_TOO_LARGE', `the body is over ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new BodyError(413, 'UI_BODY_TOO_LARGE', `the body is over ${max} bytes`);
    chunks.push(chunk);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BodyError(400, 'UI_BAD_JSON', 'the body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new BodyError(400, 'UI_BAD_JSON', 'the body is a JSON object');
  return parsed as Record<string, unknown>;
}
