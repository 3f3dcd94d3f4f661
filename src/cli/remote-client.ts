/**
 * The signed-command client: every call becomes an envelope signed with an operator key
 * (`--key FILE`, PLEXUS_KEY, or DATA/keys/admin.key), sent to the local agent's control socket
 * or to any agent's HTTP API (`--api URL`), which runs it or relays it to `--node NAME`. Through
 * an API, the CLI first checks whom it talks to (membership-proof.ts): the entry agent's
 * admission, and the target's, must check back to the network's admin key (network-record.ts)
 * and name the peer id it then addresses. Every reply frame must carry that target's signature,
 * so neither a relaying node nor a fake entry can alter or forge results unnoticed, and a
 * refusal names the agent that sent the reply. Light on purpose (node:http, node:net,
 * node:crypto): `plexus exec` starts fast.
 */
import { createConnection } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import {
  type CommandPayload,
  DEFAULT_TTL_S,
  type InputDigest,
  inputHasher,
  signCommand,
  verifyFrame,
} from '../commands/envelope.ts';
import { signInput } from '../commands/live-input.ts';
import type { Frame } from '../core/frames.ts';
import { MAX_LINE_BYTES } from '../core/frames.ts';
import { http, https } from '../core/http-modules.ts';
import { parseJsonLine, readLines, writeJsonLine } from '../core/ndjson.ts';
import { readKeyFile, type Signer } from '../crypto/ed25519.ts';
import { ed25519KeyOfPeerId } from '../crypto/peer-key.ts';
import { type AgentClient, type CallOptions, RemoteError, socketClient } from './client.ts';
import { CliError, ForgedReplyError } from './errors.ts';
import {
  describeAgent,
  isPeerId,
  type ProvenNode,
  proveEntry,
  proveResolved,
  shortPeer,
} from './membership-proof.ts';
import { networkTrustOf } from './network-record.ts';

/** Where and how to send signed commands. */
export interface RemoteInit {
  /** `http://HOST:PORT` of any agent; otherwise the local control socket. */
  url?: string;
  socketPath?: string;
  /** Operator key file. */
  keyFile: string;
  /** This machine's data dir: its keys/network.json names the admin key when no record does. */
  dataDir: string;
  /** Target node name or peer ID; the entry agent itself when absent. */
  node?: string;
}

/** The most input (upload) a CLI buffers to sign its digest. */
const MAX_SIGNED_INPUT_BYTES = 512 * 1024 * 1024;
/** `GET /v1/node` is a name, a peer id and an admission (at most about 17 KiB). */
const MAX_NODE_ANSWER_BYTES = 64 * 1024;
/** How long the entry agent may take to say who it is. */
const NODE_ANSWER_TIMEOUT_MS = 30_000;

/** A client that signs each call and checks each reply frame's signature. */
export function remoteClient(init: RemoteInit): AgentClient {
  let signer: Signer | undefined;
  let target: Promise<{ target: ProvenNode; sender: string }> | undefined;
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
    input: Input,
    onFrame: (f: Frame) => Promise<boolean>,
    signal?: AbortSignal,
  ) =>
    init.url
      ? sendHttp(init.url, line, input, onFrame, signal)
      : sendSocket(init.socketPath!, line, input, onFrame, signal);

  /** Runs one signed command and returns its result. */
  async function signed(
    target: ProvenNode,
    sender: string,
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
      target: target.peerId,
      action,
      args,
      ttlS: DEFAULT_TTL_S,
      input: opts.live ? { live: true } : digest,
    });
    let seq = 0;
    let result: unknown;
    let failure: Error | undefined;
    await send(
      envelope,
      opts.live ? liveFrames(key(), payload.id, opts.live) : input,
      async (raw) => {
        const frame = checkFrame(raw, target, sender, payload, seq);
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

  /** Whom to address, and how to name the agent that answers. */
  async function resolveTarget(): Promise<{ target: ProvenNode; sender: string }> {
    if (!init.url) return resolveLocal(init.socketPath!, init.node);
    const url = init.url.replace(/\/$/, '');
    const trust = networkTrustOf(init.keyFile, init.dataDir);
    const entry = proveEntry(await getJson(`${url}/v1/node`), trust, url);
    const sender = describeAgent(url, entry);
    if (!init.node || init.node === entry.name || init.node === entry.peerId)
      return { target: entry, sender };
    // The answer is signed by the entry, which is proven; the admission in it proves the target.
    const answer = await signed(entry, sender, 'node.resolve', { node: init.node }, {});
    return { target: proveResolved(answer, init.node, trust, sender), sender };
  }

  return {
    async call(action, args = {}, opts = {}) {
      target ??= resolveTarget();
      const { target: node, sender } = await target;
      return signed(node, sender, action, args, opts);
    },
  };
}

/**
 * Over the control socket the file permission is the authority: the local agent, which holds
 * this machine's keys, is asked unsigned which peer a name is.
 */
async function resolveLocal(
  socketPath: string,
  node?: string,
): Promise<{ target: ProvenNode; sender: string }> {
  // A peer ID needs no asking; a non-member is refused at the door (UNKNOWN_TARGET).
  const r =
    node && isPeerId(node)
      ? { name: node, peerId: node }
      : ((await socketClient(socketPath).call('node.resolve', node ? { node } : {})) as {
          name: string;
          peerId: string;
        });
  const key = ed25519KeyOfPeerId(r.peerId);
  if (!key) throw new CliError(`'${r.peerId}' is not an Ed25519 peer id`);
  return { target: { name: r.name, peerId: r.peerId, key }, sender: `the local agent (${socketPath})` };
}

/**
 * Verifies a frame: signed frames must be the target's next one; unsigned ones only refusals
 * at the door. A frame that fails names the target and the agent that sent it.
 */
function checkFrame(
  raw: unknown,
  target: ProvenNode,
  sender: string,
  payload: CommandPayload,
  seq: number,
): Frame {
  const f = raw as Frame & { fsig?: unknown };
  const forged = (what: string) =>
    new ForgedReplyError(
      `${what} is not signed by ${target.name} (${shortPeer(target.peerId)}): ${sender}, or something between it and this CLI, forged or altered it`,
    );
  if (typeof f !== 'object' || f === null) throw forged('a malformed reply frame');
  if (f.fsig === undefined) {
    if (f.type !== 'error' || typeof f.error?.code !== 'string') throw forged(`reply frame ${seq}`);
    // Refused by the node we talked to, before reaching the target. Unsigned, so it is kept to
    // one line without control characters: it cannot move the cursor or fake more output.
    return {
      type: 'error',
      error: {
        code: f.error.code.slice(0, 64),
        message: String(f.error.message)
          .replace(/[\x00-\x1f\x7f-\x9f]/g, ' ')
          .slice(0, 1024),
        kind: f.error.kind,
      },
    };
  }
  try {
    return verifyFrame(target.key, payload.target, payload.id, seq, raw);
  } catch {
    throw forged(`reply frame ${seq}`);
  }
}

/** What follows the envelope: an upload's frames, or a session's live frames. */
type Input = unknown[] | AsyncIterable<unknown>;

/** Signs a session's input frames one by one, as they come (src/commands/live-input.ts). */
async function* liveFrames(
  signer: Signer,
  id: string,
  frames: AsyncIterable<Record<string, unknown>>,
): AsyncGenerator<unknown> {
  let seq = 0;
  for await (const frame of frames) yield signInput(signer, id, seq++, frame);
}

/** Writes input to a socket or request, waiting for it to drain when full. */
async function pumpInput(out: Writable, input: Input): Promise<void> {
  for await (const frame of input) {
    if (out.destroyed) return;
    await writeJsonLine(out, frame);
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
  input: Input,
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
      pumpInput(socket, input).catch(fail);
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
  input: Input,
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
        readAll(res).then((body) => reject(httpError(res.statusCode ?? 0, body ?? '')), reject);
        return;
      }
      consume(readLines(res, MAX_LINE_BYTES * 16), onFrame).then(() => {
        res.destroy();
        resolve();
      }, reject);
    });
    req.write(`${JSON.stringify(envelope)}\n`);
    // A session's input never ends on its own: the request stays open until the answer is in.
    pumpInput(req, input).then(() => {
      if (Array.isArray(input)) req.end();
    }, reject);
  });
}

/** GETs a small JSON answer (who the entry agent is), with a size limit and a deadline. */
function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? https().request : http.request)(u, { method: 'GET' }, (res) => {
      readAll(res, MAX_NODE_ANSWER_BYTES).then((body) => {
        if (body === undefined)
          return reject(
            new CliError(`${url} answered with over ${MAX_NODE_ANSWER_BYTES} bytes; is it a plexus API?`),
          );
        if (res.statusCode !== 200) return reject(httpError(res.statusCode ?? 0, body));
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new CliError(`${url} did not answer with JSON; is it a plexus API?`));
        }
      }, reject);
    });
    req.setTimeout(NODE_ANSWER_TIMEOUT_MS, () =>
      req.destroy(new Error(`no answer within ${NODE_ANSWER_TIMEOUT_MS / 1000} s`)),
    );
    req.once('error', (err) => reject(new CliError(`cannot reach the API at ${u.origin}: ${err.message}`)));
    req.end();
  });
}

/** Reads a body of at most `max` bytes; undefined when it is longer. */
async function readAll(stream: Readable, max = 1024 * 1024): Promise<string | undefined> {
  let body = '';
  for await (const chunk of stream) {
    body += chunk;
    if (body.length > max) {
      stream.destroy();
      return undefined;
    }
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
