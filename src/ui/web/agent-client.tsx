/**
 * The page served by an agent at /ui/ signs its own commands (docs/ui.md, "The agent's /ui/"):
 * the operator key file is imported once into WebCrypto as a non-extractable Ed25519 key and
 * kept in IndexedDB (the page can sign with it; no script, this one included, can read it back),
 * and every call is an envelope posted to the agent's /v1/commands, in the wire format of
 * docs/commands.md. Reply frames are not checked here: the agent that answers also served this
 * page's code, so a check in the page could be no stronger than that agent; `plexus ui` checks
 * them on the operator's machine.
 */
import type { AgentClient, CallOptions } from '../../cli/client.ts';

/** The imported key: a handle WebCrypto signs with, its key id, and its public half. */
export interface StoredKey {
  key: CryptoKey;
  kid: string;
  publicKey: string;
}

const DB = 'plexus-ui';
const STORE = 'keys';
/** Envelopes live 60 s, as the CLI's (DEFAULT_TTL_S in src/commands/envelope.ts). */
const TTL_S = 60;

function b64u(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function db(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, run: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const d = await db();
  return new Promise((resolve, reject) => {
    const r = run(d.transaction(STORE, mode).objectStore(STORE));
    r.onsuccess = () => resolve(r.result as T);
    r.onerror = () => reject(r.error);
  });
}

/** The key imported earlier in this browser, if any. */
export function loadKey(): Promise<StoredKey | undefined> {
  return tx('readonly', (s) => s.get('operator'));
}

/** Forgets the imported key. */
export function forgetKey(): Promise<void> {
  return tx('readwrite', (s) => s.delete('operator'));
}

/**
 * Imports an operator key file (`plexus operator keygen`: JSON with base64url `publicKey` and
 * `secretKey`) as a non-extractable signing key, and stores it. The file's text is dropped.
 */
export async function importKeyFile(text: string): Promise<StoredKey> {
  let file: { type?: string; kid?: string; publicKey?: string; secretKey?: string };
  try {
    file = JSON.parse(text);
  } catch {
    throw new Error('this is not a plexus key file (not JSON)');
  }
  if (file.type !== 'plexus-ed25519' || !file.publicKey || !file.secretKey)
    throw new Error("this is not a plexus key file (make one with 'plexus operator keygen')");
  const key = await crypto.subtle.importKey(
    'jwk',
    { kty: 'OKP', crv: 'Ed25519', x: file.publicKey, d: file.secretKey },
    { name: 'Ed25519' },
    false,
    ['sign'],
  );
  const digest = new Uint8Array(
    await crypto.subtle.digest(
      'SHA-256',
      Uint8Array.from(atob(file.publicKey.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)),
    ),
  );
  const stored = { key, kid: b64u(digest).slice(0, 16), publicKey: file.publicKey };
  await tx('readwrite', (s) => s.put(stored, 'operator'));
  return stored;
}

/** Signs `"plexus-cmd/1\n" + payload` into an envelope (src/commands/envelope.ts's format). */
async function envelope(
  k: StoredKey,
  target: string,
  action: string,
  args: object,
  input?: object,
  id = b64u(crypto.getRandomValues(new Uint8Array(16))),
) {
  const iat = Math.floor(Date.now() / 1000);
  const payload = b64u(
    new TextEncoder().encode(
      JSON.stringify({ id, target, action, args, iat, exp: iat + TTL_S, ...(input ? { input } : {}) }),
    ),
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign('Ed25519', k.key, new TextEncoder().encode(`plexus-cmd/1\n${payload}`)),
  );
  return { v: 1, kid: k.kid, payload, sig: b64u(sig) };
}

/** The error a node (or the agent at the door) answered. */
export class CommandError extends Error {
  code: string;
  body: { code: string; message: string; kind?: string };
  constructor(body: { code: string; message: string; kind?: string }) {
    super(body.message);
    this.code = body.code;
    this.body = body;
  }
}

/** Posts one envelope (and its input lines) and hands each reply frame to the caller. */
function post(lines: object[], opts: CallOptions): Promise<unknown> {
  return replies(
    '/v1/commands',
    'application/x-ndjson',
    `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`,
    opts,
  );
}

/** Posts `body` to `path` and reads the reply frames: data to the caller, the result returned. */
async function replies(path: string, type: string, body: string, opts: CallOptions): Promise<unknown> {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': type },
    body,
    signal: opts.signal,
  });
  if (!(res.headers.get('content-type') ?? '').startsWith('application/x-ndjson')) {
    const body = await res.json().catch(() => null);
    throw new CommandError(
      body?.error ?? { code: `HTTP_${res.status}`, message: `the agent answered HTTP ${res.status}` },
    );
  }
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const frame = JSON.parse(buf.slice(0, nl)) as {
        type: string;
        data?: unknown;
        result?: unknown;
        error?: CommandError['body'];
      };
      buf = buf.slice(nl + 1);
      if (frame.type === 'data') await opts.onData?.(frame.data);
      else if (frame.type === 'result') {
        void reader.cancel();
        return frame.result;
      } else if (frame.type === 'error') {
        void reader.cancel();
        // This page sends each envelope once; a REPLAY means the browser itself resent the POST
        // (Chromium retries a request whose kept-alive connection closed under it; the agent
        // closes a browser's connections after each answer so that none is). The node ran the
        // first copy; its answer was lost with that connection.
        if (frame.error?.code === 'REPLAY')
          throw new CommandError({
            code: 'REPLAY',
            message:
              'the node ran this command, but its answer was lost when the browser resent it (REPLAY refused the copy); reload to see the result',
          });
        throw new CommandError(frame.error!);
      }
    }
  }
  throw new CommandError({
    code: 'NO_ANSWER',
    message: 'the agent closed the connection without a final answer',
  });
}

/** Signs the `seq`-th input frame of session `id` (src/commands/live-input.ts's format). */
async function signInput(k: StoredKey, id: string, seq: number, frame: object): Promise<object> {
  const bytes = new TextEncoder().encode(`plexus-cmd-input/1\n${id}\n${seq}\n${JSON.stringify(frame)}`);
  const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', k.key, bytes));
  return { ...frame, iseq: seq, isig: b64u(sig) };
}

/** Most frames in one input POST (the agent takes 64), and a keep-alive after this much silence. */
const INPUT_BATCH = 32;
const KEEPALIVE_MS = 10_000;

/**
 * An interactive session through the agent's /v1/sessions (docs/ui.md): the signed envelope
 * opens it and its reply frames stream back on that response; the keys from `opts.live` are
 * signed one by one as they come and posted in order, a batch at a time, to
 * /v1/sessions/input. A batch that did not get through is posted again as it was: the agent
 * drops the frames it already passed on, so none runs twice.
 */
async function session(
  k: StoredKey,
  target: string,
  action: string,
  args: object,
  opts: CallOptions,
): Promise<unknown> {
  const id = b64u(crypto.getRandomValues(new Uint8Array(16)));
  const env = await envelope(k, target, action, args, { live: true }, id);
  const done = new AbortController();
  opts.signal?.addEventListener('abort', () => done.abort(), { once: true });
  const signed: Promise<object>[] = [];
  let seq = 0;
  let wake: (() => void) | undefined;
  let last = Date.now();
  const push = (frame: object) => {
    signed.push(signInput(k, id, seq++, frame));
    last = Date.now();
    wake?.();
  };
  const keepAlive = setInterval(
    () => Date.now() - last >= KEEPALIVE_MS && push({ t: 'p' }),
    KEEPALIVE_MS / 2,
  );
  let failure: unknown;
  // Input waits for the session's first frame (`ready`): before it, the agent has no such session.
  let opened: () => void = () => {};
  const ready = new Promise<void>((r) => {
    opened = r;
  });
  done.signal.addEventListener('abort', () => opened(), { once: true });
  void (async () => {
    await ready;
    while (!done.signal.aborted) {
      if (signed.length === 0) {
        await new Promise<void>((r) => {
          wake = r;
        });
        continue;
      }
      const batch = await Promise.all(signed.slice(0, INPUT_BATCH));
      await sendInput(id, batch, done.signal);
      signed.splice(0, batch.length);
    }
  })().catch((err) => {
    // Keys that cannot get through end the session: the node hangs it up when the page leaves.
    if (done.signal.aborted) return;
    failure = err;
    done.abort();
  });
  const reader = (async () => {
    if (!opts.live) return;
    for await (const frame of opts.live) push(frame);
  })();
  try {
    return await replies('/v1/sessions', 'application/json', JSON.stringify(env), {
      ...opts,
      signal: done.signal,
      onData: (data) => {
        opened();
        return opts.onData?.(data);
      },
    });
  } catch (err) {
    throw failure ?? err;
  } finally {
    clearInterval(keepAlive);
    done.abort();
    wake?.();
    void reader.catch(() => {});
  }
}

/** Posts one batch of signed input frames; waits and posts it again while the agent is busy. */
async function sendInput(id: string, frames: object[], signal: AbortSignal): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch('/v1/sessions/input', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id, frames }),
      signal,
    }).catch((err) => {
      if (signal.aborted || attempt >= 3) throw err;
      return undefined;
    });
    if (res?.ok) return;
    const body = res ? await res.json().catch(() => null) : null;
    const busy = !res || body?.error?.code === 'SESSION_INPUT_BUSY';
    if (!busy || attempt >= 50)
      throw new CommandError(body?.error ?? { code: `HTTP_${res?.status}`, message: 'input refused' });
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SHA-256 (hex) over each input frame's JSON and a newline: the digest the envelope signs. */
async function inputDigest(frames: object[]): Promise<{ frames: number; sha256: string }> {
  const text = frames.map((f) => `${JSON.stringify(f)}\n`).join('');
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return { frames: frames.length, sha256: [...d].map((b) => b.toString(16).padStart(2, '0')).join('') };
}

/**
 * A client per node: the entry is the agent that served the page (GET /v1/node names it);
 * another node's peer id comes from a signed `node.resolve` on the entry.
 */
export function browserClients(k: StoredKey): (node?: string) => AgentClient {
  let entry: Promise<{ name: string; peerId: string }> | undefined;
  const targets = new Map<string, Promise<string>>();
  const entryNode = () => {
    entry ??= fetch('/v1/node').then((r) => r.json());
    return entry;
  };
  const targetOf = (node?: string): Promise<string> => {
    const key = node ?? '';
    let t = targets.get(key);
    if (!t) {
      t = (async () => {
        const e = await entryNode();
        if (!node || node === e.name || node === e.peerId) return e.peerId;
        const r = (await post([await envelope(k, e.peerId, 'node.resolve', { node })], {})) as {
          peerId: string;
        };
        return r.peerId;
      })();
      t.catch(() => targets.delete(key));
      targets.set(key, t);
    }
    return t;
  };
  const clients = new Map<string, AgentClient>();
  return (node) => {
    let c = clients.get(node ?? '');
    if (!c) {
      c = {
        async call(action, args = {}, opts = {}) {
          const target = await targetOf(node);
          if (opts.live) return session(k, target, action, args, opts);
          const input: object[] = [];
          if (opts.input) for await (const f of opts.input) input.push(f as object);
          const env = await envelope(
            k,
            target,
            action,
            args,
            input.length ? await inputDigest(input) : undefined,
          );
          return post([env, ...input], opts);
        },
      };
      clients.set(node ?? '', c);
    }
    return c;
  };
}
