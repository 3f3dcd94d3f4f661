/**
 * The page's only way out: the local server's /api/ routes (src/cli/ui/server.ts), each with this
 * launch's secret in a header. The secret arrives in the URL fragment (never sent to a server,
 * never in a Referer), is kept in sessionStorage (this tab, this origin) and removed from the
 * address bar at once.
 */

import type { AgentClient } from '../../cli/client.ts';
import { FleetHub } from '../../cli/ui/fleet.ts';
import { frameQueue } from '../../core/frame-queue.ts';
import { browserClients, type StoredKey } from './agent-client.tsx';

const SECRET_KEY = 'plexus-ui-secret';

/** Served by an agent at /ui/ (signing in the browser) rather than by `plexus ui`. */
export const AGENT_MODE = location.pathname.startsWith('/ui');
let agent: { clientFor: (node?: string) => AgentClient; kid: string } | undefined;

/** Signs in the browser with `k` from now on (the agent's /ui/). */
export function signWithBrowserKey(k: StoredKey): void {
  agent = { clientFor: browserClients(k), kid: k.kid };
}

function asApiError(err: unknown): ApiError {
  const e = err as { code?: string; message?: string };
  return err instanceof ApiError ? err : new ApiError(e?.code ?? 'UI_ERROR', e?.message ?? String(err));
}
const HEADER = 'x-plexus-ui';

/** Takes the secret from the fragment (first load) or sessionStorage (reloads). */
export function loadSecret(): string | null {
  const m = /(?:^#|&)s=([A-Za-z0-9_-]{16,128})/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(SECRET_KEY, m[1]);
    history.replaceState(null, '', `${location.pathname}#/fleet`);
  }
  return sessionStorage.getItem(SECRET_KEY);
}

function secret(): string {
  return sessionStorage.getItem(SECRET_KEY) ?? '';
}

/** An error answered by the server or a node: its code and its own words. */
export class ApiError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

function toError(body: unknown, status: number): ApiError {
  const e = (body as { error?: { code?: string; message?: string } })?.error;
  return new ApiError(
    e?.code ?? `HTTP_${status}`,
    e?.message ?? `the dashboard server answered HTTP ${status}`,
  );
}

/** The agent's /ui/: open terminals by this page's handle, and the last handle given. */
const terminals = new Map<string, ReturnType<typeof frameQueue>>();
let lastHandle = 0;

/** Runs one action on a node (the entry agent when node is undefined) and returns its result. */
export async function call<T = unknown>(action: string, args: object = {}, node?: string): Promise<T> {
  if (agent)
    return (await agent
      .clientFor(node)
      .call(action, args as Record<string, unknown>)
      .catch((e) => {
        throw asApiError(e);
      })) as T;
  const res = await fetch('/api/call', {
    method: 'POST',
    headers: { 'content-type': 'application/json', [HEADER]: secret() },
    body: JSON.stringify({ action, args, node }),
  });
  const body = await res.json().catch(() => null);
  if (!res.ok || body?.error) throw toError(body, res.status);
  return body.result as T;
}

/** A line of a streamed answer. */
export type StreamLine = {
  session?: string;
  data?: unknown;
  result?: unknown;
  error?: { code: string; message: string };
};

/** The text of a streamed body, cut at each `sep` (the separators dropped), as it arrives. */
async function* pieces(body: NonNullable<Response['body']>, sep: string): AsyncGenerator<string> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end = buf.indexOf(sep);
    while (end >= 0) {
      yield buf.slice(0, end);
      buf = buf.slice(end + sep.length);
      end = buf.indexOf(sep);
    }
  }
}

/** Reads an NDJSON answer line by line until it ends or `signal` aborts. */
async function readLines(res: Response, onLine: (l: StreamLine) => void): Promise<void> {
  if (!res.body) return;
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('application/x-ndjson')) throw toError(await res.json().catch(() => null), res.status);
  for await (const line of pieces(res.body, '\n')) if (line) onLine(JSON.parse(line) as StreamLine);
}

/** Streams a long-running action (logs, a terminal): every line to `onLine`. */
export async function stream(
  action: string,
  args: object,
  node: string | undefined,
  onLine: (l: StreamLine) => void,
  signal?: AbortSignal,
): Promise<void> {
  if (agent) {
    // A terminal's keys come through input() under a handle of this page, as from plexus ui.
    const live = action === 'shell.open' ? frameQueue() : undefined;
    const handle = live ? `t${++lastHandle}` : undefined;
    if (handle && live) {
      terminals.set(handle, live);
      onLine({ session: handle });
    }
    try {
      const result = await agent
        .clientFor(node)
        .call(action, args as Record<string, unknown>, { signal, live, onData: (data) => onLine({ data }) });
      onLine({ result });
    } catch (e) {
      if (!signal?.aborted) onLine({ error: { code: asApiError(e).code, message: asApiError(e).message } });
    } finally {
      live?.close();
      if (handle) terminals.delete(handle);
    }
    return;
  }
  const res = await fetch('/api/stream', {
    method: 'POST',
    headers: { 'content-type': 'application/json', [HEADER]: secret() },
    body: JSON.stringify({ action, args, node }),
    signal,
  });
  await readLines(res, onLine);
}

/** Sends a terminal's input frames (keys, resizes) to its session. */
export async function input(session: string, frames: object[]): Promise<void> {
  const live = terminals.get(session);
  if (agent) {
    if (!live) throw new ApiError('SESSION_NOT_FOUND', 'the terminal session has ended');
    for (const f of frames) live.push(f as Record<string, unknown>);
    return;
  }
  const res = await fetch('/api/input', {
    method: 'POST',
    headers: { 'content-type': 'application/json', [HEADER]: secret() },
    body: JSON.stringify({ session, frames }),
  });
  if (!res.ok) throw toError(await res.json().catch(() => null), res.status);
}

/** Uploads a bundle and deploys it as a new release of `app` on `node`; progress lines to `onLine`. */
export async function deployUpload(node: string, app: string, file: Blob, onLine: (l: StreamLine) => void) {
  if (agent) {
    // Buffered whole: the envelope signs the digest of every frame before the first is sent.
    const bytes = new Uint8Array(await file.arrayBuffer());
    const frames: object[] = [];
    for (let at = 0; at < bytes.length; at += 256 * 1024) {
      let s = '';
      for (const b of bytes.subarray(at, at + 256 * 1024)) s += String.fromCharCode(b);
      frames.push({ chunk: btoa(s) });
    }
    frames.push({ end: true });
    const input = (async function* () {
      yield* frames;
    })();
    return agent
      .clientFor(node)
      .call('apps.deploy', { app, upload: {} }, { input, onData: (data) => onLine({ data }) })
      .then(
        (result) => onLine({ result }),
        (e) => onLine({ error: { code: asApiError(e).code, message: asApiError(e).message } }),
      );
  }
  const q = new URLSearchParams({ node, app });
  const res = await fetch(`/api/deploy?${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', [HEADER]: secret() },
    body: file,
  });
  await readLines(res, onLine);
}

/**
 * Follows the fleet: server-sent events read through fetch (EventSource cannot send the secret
 * header), reconnecting after a second when the stream drops.
 */
export function followFleet(onSnapshot: (s: unknown) => void, onDown: (why: string) => void): () => void {
  if (agent) {
    const hub = new FleetHub(agent.clientFor, agent.kid);
    const off = hub.subscribe(onSnapshot);
    hub.start();
    return () => {
      off();
      hub.stop();
    };
  }
  const abort = new AbortController();
  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const res = await fetch('/api/events', { headers: { [HEADER]: secret() }, signal: abort.signal });
        if (!res.ok || !res.body) throw toError(await res.json().catch(() => null), res.status);
        // Server-sent events: blank-line separated, each `data: ` line a part of the payload.
        for await (const event of pieces(res.body, '\n\n')) {
          const data = event
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data) onSnapshot(JSON.parse(data));
        }
        onDown('the dashboard server closed the stream');
      } catch (err) {
        if (abort.signal.aborted) return;
        onDown((err as Error).message);
        if (err instanceof ApiError && err.code === 'UI_SECRET_REQUIRED') return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void run();
  return () => abort.abort();
}
