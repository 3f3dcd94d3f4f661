/**
 * `POST /v1/commands`: the body is NDJSON, an envelope on the first line and then any input
 * frames (upload chunks); the reply is NDJSON frames. The envelope line has a size limit and a
 * deadline (slow or endless bodies are cut off), input has its own total limit and idle
 * deadline. A refusal before any frame was sent also sets the HTTP status.
 */
import type { ServerResponse } from 'node:http';
import {
  DRAIN_AFTER_REFUSAL_MS,
  ENVELOPE_TIMEOUT_MS,
  INPUT_IDLE_TIMEOUT_MS,
  MAX_ENVELOPE_BYTES,
  MAX_INPUT_BYTES,
  MAX_INPUT_FRAME_BYTES,
} from '../../commands/constants.ts';
import type { CommandService, FrameSink } from '../../commands/service.ts';
import type { Frame } from '../../core/frames.ts';
import { parseJsonLine, readLines, writeJsonLine } from '../../core/ndjson.ts';
import type { Admission } from '../../mesh/records.ts';
import {
  BadRequestError,
  BodyTimeoutError,
  BodyTooLargeError,
  UploadTimeoutError,
  UploadTooLargeError,
} from '../errors.ts';
import { type ApiRequest, type Router, STATUS_BY_KIND } from '../http.ts';

/** What the command routes need. */
export interface CommandRoutesDeps {
  /** Decides on and runs envelopes; records the requests refused before one was read. */
  commands: Pick<CommandService, 'handle' | 'refuseRequest'>;
  /** Who this node is, with the admission that proves it. */
  self(): NodeSelf;
}

/** `GET /v1/node`: this node's name, peer ID, network, and its self-certifying admission. */
export interface NodeSelf {
  name: string;
  peerId: string;
  networkId: string;
  /** Checks back to the network's admin key with nothing else (src/mesh/records.ts). */
  admission: Admission | null;
}

/**
 * Mounts the command endpoint, and `GET /v1/node`: the name and peer ID of this node, which a
 * remote CLI needs to address a signed command to it, with the admission that lets the CLI
 * check them back to the network's admin key (docs/commands.md). None of it is secret: a peer
 * ID shows in every libp2p handshake, and every member holds every admission.
 */
export function mountCommandRoutes(router: Router, deps: CommandRoutesDeps): void {
  router.route('POST', '/v1/commands', (req, res) => handleCommand(req, res, deps.commands));
  router.route('GET', '/v1/node', () => deps.self());
}

async function handleCommand(
  req: ApiRequest,
  res: ServerResponse,
  commands: CommandRoutesDeps['commands'],
): Promise<void> {
  const raw = req.raw;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_ENVELOPE_BYTES + MAX_INPUT_BYTES) {
    const err = new BodyTooLargeError(MAX_ENVELOPE_BYTES + MAX_INPUT_BYTES);
    commands.refuseRequest(err, 'http', req.source);
    throw err;
  }
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  const lines = readLines(raw, Math.max(MAX_ENVELOPE_BYTES, MAX_INPUT_FRAME_BYTES));

  let first: IteratorResult<string>;
  let timer: NodeJS.Timeout | undefined;
  try {
    first = await Promise.race([
      lines.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new BodyTimeoutError(ENVELOPE_TIMEOUT_MS, 'envelope')),
          ENVELOPE_TIMEOUT_MS,
        );
      }),
    ]);
    if (first.done) throw new BadRequestError('empty body: send a signed envelope');
    if (Buffer.byteLength(first.value) > MAX_ENVELOPE_BYTES)
      throw new BodyTooLargeError(MAX_ENVELOPE_BYTES, 'envelope');
  } catch (err) {
    commands.refuseRequest(err, 'http', req.source);
    dropAfterReply(res);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  let envelope: unknown;
  try {
    envelope = parseJsonLine(first.value);
  } catch (err) {
    commands.refuseRequest(err, 'http', req.source);
    dropAfterReply(res);
    throw err;
  }

  let inputBytes = 0;
  const input = (async function* () {
    for (;;) {
      let t: NodeJS.Timeout | undefined;
      const next = await Promise.race([
        lines.next(),
        new Promise<never>((_, reject) => {
          t = setTimeout(() => reject(new UploadTimeoutError()), INPUT_IDLE_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(t));
      if (next.done) return;
      inputBytes += Buffer.byteLength(next.value);
      if (inputBytes > MAX_INPUT_BYTES) throw new UploadTooLargeError(MAX_INPUT_BYTES);
      yield parseJsonLine(next.value);
    }
  })();

  await commands.handle(envelope, input, frameSink(res), {
    via: 'http',
    signal: abort.signal,
    source: req.source,
  });
  // Whatever input the action did not read is not wanted any more: drop the connection after
  // the reply, and say so, so that no client reuses it.
  if (!raw.readableEnded) dropAfterReply(res);
  res.end();
}

/**
 * Writes a command's reply frames to `res` as NDJSON. The first frame sets the status: 200, or
 * the refusal's own when the command was refused before it ran.
 */
export function frameSink(res: ServerResponse): FrameSink {
  let started = false;
  return async (frame: Frame) => {
    if (!started) {
      started = true;
      const status = frame.type === 'error' ? (STATUS_BY_KIND[frame.error.kind ?? 'invalid'] ?? 400) : 200;
      res.writeHead(status, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      res.flushHeaders();
    }
    await writeJsonLine(res, frame);
  };
}

/**
 * Answers first, then drops the connection: the rest of a refused body is not wanted. It is
 * drained for a moment so a client still sending can read the answer instead of a reset.
 */
function dropAfterReply(res: ServerResponse): void {
  if (!res.headersSent) res.shouldKeepAlive = false;
  res.once('finish', () => {
    const req = res.req;
    req.resume();
    const t = setTimeout(() => req.destroy(), DRAIN_AFTER_REFUSAL_MS);
    t.unref();
    req.once('end', () => clearTimeout(t));
  });
}
