/**
 * The signed-command client: every call becomes an envelope signed with an operator key
 * (`--key FILE`, PLEXUS_KEY, or DATA/keys/admin.key), sent to the local agent's control socket
 * or to any agent's HTTP API (`--api URL`), which runs it or relays it to `--node NAME`. Every
 * reply frame must carry the target's signature, so a relaying node cannot alter results
 * unnoticed. Light on purpose (node:http, node:net, node:crypto): `plexus exec` starts fast.
 */
import { createConnection } from 'node:net';
import type { Readable } from 'node:stream';
import {
  type CommandPayload,
  DEFAULT_TTL_S,
  type InputDigest,
  inputHasher,
  signCommand,
  verifyFrame,
} from '../commands/envelope.ts';
import type { Frame } from '../core/frames.ts';
import { MAX_LINE_BYTES } from '../core/frames.ts';
import { http, https } from '../core/http-modules.ts';
import { parseJsonLine, readLines } from '../core/ndjson.ts';
import { readKeyFile, type Signer } from '../crypto/ed25519.ts';
import { ed25519KeyOfPeerId } from '../crypto/peer-key.ts';
import { type AgentClient, type CallOptions, RemoteError, socketClient } from './client.ts';
import { CliError } from './errors.ts';

/** Where and how to send signed commands. */
export interface RemoteInit {
  /** `http://HOST:PORT` of any agent; otherwise the local control socket. */
  url?: string;
  socketPath?: string;
  /** Operator key file. */
  keyFile: string;
  /** Target node name or peer ID; the entry agent itself when absent. */
  node?: string;
}

/** The most input (upload) a CLI buffers to sign its digest. */
const MAX_SIGNED_INPUT_BYTES = 512 * 1024 * 1024;
const PEER_ID_RE = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/;

/** A client that signs each call and checks each reply frame's signature. */
export function remoteClient(init: RemoteInit): AgentClient {
  let signer: Signer | undefined;
  let target: Promise<string> | undefined;
  const key = () => {
    if (!signer) {
      try {
        signer = readKeyFile(init.keyFile);
      } catch (err) {
        throw new CliError(
          `${(err as Error).message}; pass an operator key with --key FILE (create one with 'plexus operator keygen')`,
        );
      }
    }
    return signer;
  };

  const send = (
    line: unknown,
    input: unknown[],
    onFrame: (f: Frame) => Promise<boolean>,
    signal?: AbortSignal,
  ) =>
    init.url
      ? sendHttp(init.url, line, input, onFrame, signal)
      : sendSocket(init.socketPath!, line, input, onFrame, signal);

  /** Runs one signed command and returns its result. */
  async function signed(
    peerId: string,
    action: string,
    args: Record<string, unknown>,
    opts: CallOptions,
  ): Promise<unknown> {
    const input: unknown[] = [];
    let digest: InputDigest | undefined;
    if (opts.input) {
      const h = inputHasher();
      let size = 0;
      for await (const frame of opts.input) {
        size += JSON.stringify(frame).length;
        if (size > MAX_SIGNED_INPUT_BYTES) throw new CliError(`upload over ${MAX_SIGNED_INPUT_BYTES} bytes`);
        h.update(frame);
        input.push(frame);
      }
      if (input.length > 0) digest = h.digest();
    }
    const { envelope, payload } = signCommand(key(), {
      target: peerId,
      action,
      args,
      ttlS: DEFAULT_TTL_S,
      input: digest,
    });
    const targetKey = ed25519KeyOfPeerId(peerId);
    if (!targetKey) throw new CliError(`'${peerId}' is not an Ed25519 peer id`);
    let seq = 0;
    let result: unknown;
    let failure: Error | undefined;
    await send(
      envelope,
      input,
      async (raw) => {
        const frame = checkFrame(raw, targetKey, payload, seq);
        if ('fsig' in (raw as object)) seq++;
        if (frame.type === 'data') {
          await opts.onData?.(frame.data);
          return false;
        }
        if (frame.type === 'result') result = frame.result;
        else failure = new RemoteError(frame.error);
        return true;
      },
      opts.signal,
    );
    if (failure) throw failure;
    return result;
  }

  async function resolveTarget(): Promise<string> {
    if (init.node && PEER_ID_RE.test(init.node)) return init.node;
    if (!init.url) {
      // Over the control socket the file permission is the authority: ask unsigned.
      const r = (await socketClient(init.socketPath!).call(
        'node.resolve',
        init.node ? { node: init.node } : {},
      )) as {
        peerId: string;
      };
      return r.peerId;
    }
    const entry = (await getJson(`${init.url.replace(/\/$/, '')}/v1/node`)) as {
      name: string;
      peerId: string;
    };
    if (!init.node || init.node === entry.name) return entry.peerId;
    const r = (await signed(entry.peerId, 'node.resolve', { node: init.node }, {})) as { peerId: string };
    return r.peerId;
  }

  return {
    async call(action, args = {}, opts = {}) {
      target ??= resolveTarget();
      return signed(await target, action, args, opts);
    },
  };
}

/** Verifies a frame: signed frames must be the target's next one; unsigned ones only refusals at the door. */
function checkFrame(raw: unknown, targetKey: Buffer, payload: CommandPayload, seq: number): Frame {
  const f = raw as Frame & { fsig?: unknown };
  if (typeof f !== 'object' || f === null) throw new CliError('the agent sent a malformed frame');
  if (f.fsig === undefined) {
    if (f.type !== 'error' || typeof f.error?.code !== 'string')
      throw new CliError('a reply frame is not signed by the target: a relaying node altered the reply');
    // Refused by the node we talked to, before reaching the target.
    return {
      type: 'error',
      error: { code: f.error.code, message: String(f.error.message), kind: f.error.kind },
    };
  }
  try {
    return verifyFrame(targetKey, payload.target, payload.id, seq, raw);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

async function consume(lines: AsyncIterable<string>, onFrame: (f: Frame) => Promise<boolean>): Promise<void> {
  for await (const line of lines) {
    if (await onFrame(parseJsonLine(line) as Frame)) return;
  }
  throw new CliError('the agent closed the connection without a final answer');
}

function sendSocket(
  path: string,
  envelope: unknown,
  input: unknown[],
  onFrame: (f: Frame) => Promise<boolean>,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    signal?.addEventListener('abort', () => fail(new CliError('interrupted')), { once: true });
    socket.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        new CliError(
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
            ? `no agent is running for this data dir (${path}); start it with 'plexus agent' or use --api URL`
            : `cannot reach the agent: ${err.message}`,
        ),
      ),
    );
    socket.once('connect', () => {
      socket.write(`${JSON.stringify({ envelope })}\n`);
      // No half-close: the control socket ends its side when ours ends, and replies would be lost.
      for (const frame of input) socket.write(`${JSON.stringify(frame)}\n`);
      consume(readLines(socket, MAX_LINE_BYTES * 16), onFrame).then(() => {
        socket.destroy();
        resolve();
      }, fail);
    });
  });
}

function sendHttp(
  url: string,
  envelope: unknown,
  input: unknown[],
  onFrame: (f: Frame) => Promise<boolean>,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const u = new URL('/v1/commands', url);
    const req = (u.protocol === 'https:' ? https().request : http.request)(u, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      signal,
    });
    req.once('error', (err) =>
      reject(
        new CliError(signal?.aborted ? 'interrupted' : `cannot reach the API at ${url}: ${err.message}`),
      ),
    );
    req.once('response', (res) => {
      const type = String(res.headers['content-type'] ?? '');
      if (!type.startsWith('application/x-ndjson')) {
        readAll(res).then((body) => reject(httpError(res.statusCode ?? 0, body)), reject);
        return;
      }
      consume(readLines(res, MAX_LINE_BYTES * 16), onFrame).then(() => {
        res.destroy();
        resolve();
      }, reject);
    });
    req.write(`${JSON.stringify(envelope)}\n`);
    for (const frame of input) req.write(`${JSON.stringify(frame)}\n`);
    req.end();
  });
}

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? https().request : http.request)(u, { method: 'GET' }, (res) => {
      readAll(res).then((body) => {
        if (res.statusCode !== 200) return reject(httpError(res.statusCode ?? 0, body));
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new CliError(`${url} did not answer with JSON; is it a plexus API?`));
        }
      }, reject);
    });
    req.once('error', (err) => reject(new CliError(`cannot reach the API at ${u.origin}: ${err.message}`)));
    req.end();
  });
}

async function readAll(stream: Readable): Promise<string> {
  let body = '';
  for await (const chunk of stream) {
    body += chunk;
    if (body.length > 1024 * 1024) break;
  }
  return body;
}

function httpError(status: number, body: string): Error {
  try {
    const parsed = JSON.parse(body) as { error?: { code: string; message: string } };
    if (parsed.error?.code) return new RemoteError(parsed.error);
  } catch {
    // not JSON
  }
  return new CliError(`the API answered HTTP ${status}; is it a plexus agent?`);
}
