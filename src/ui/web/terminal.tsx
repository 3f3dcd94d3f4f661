/**
 * The Terminal page: a shell on any node (NAT'd ones too) in xterm.js, over the shell protocol
 * (docs/shell.md): through the local server, which signs every input frame with the operator
 * key, or on the agent's /ui/ through its /v1/sessions, signed in this page (agent-client.tsx).
 * Keys are sent in order, batched per animation frame; the window's size follows the page.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'preact/hooks';
import { input, stream } from './api.tsx';
import { can, type Fleet } from './model.tsx';

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The Terminal page: pick a node, get a shell. */
export function TerminalPage({ fleet, node }: { fleet: Fleet; node?: string }) {
  const [chosen, setChosen] = useState(node ?? '');
  if (!can(fleet.me, 'shell'))
    return (
      <section>
        <h1>Terminal</h1>
        <p class="muted">
          This key may not open sessions (an admin grants them with plexus operator add --shell).
        </p>
      </section>
    );
  return (
    <section>
      <h1>Terminal</h1>
      <p>
        <select name="node" value={chosen} onChange={(e) => setChosen((e.target as HTMLSelectElement).value)}>
          <option value="">choose a node</option>
          {fleet.nodes.map((n) => (
            <option key={n.name} value={n.name}>
              {n.name} ({n.connection})
            </option>
          ))}
        </select>
      </p>
      {chosen && <Session key={chosen} node={chosen} />}
    </section>
  );
}

function Session({ node }: { node: string }) {
  const host = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('connecting…');
  useEffect(() => {
    const term = new Terminal({ cursorBlink: true, convertEol: false, fontSize: 14 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current!);
    fit.fit();
    const abort = new AbortController();
    let session: string | undefined;
    let queued: object[] = [];
    let sending: Promise<void> = Promise.resolve();
    const enc = new TextEncoder();
    const flush = () => {
      if (!session || queued.length === 0) return;
      const frames = queued;
      queued = [];
      const s = session;
      // One POST at a time, so keys reach the node in the order they were typed.
      sending = sending
        .then(() => input(s, frames))
        .catch((e) => setStatus(`input refused: ${(e as Error).message}`));
    };
    const push = (f: object) => {
      queued.push(f);
      if (queued.length === 1) requestAnimationFrame(flush);
    };
    term.onData((d) => push({ t: 'd', d: toBase64(enc.encode(d)) }));
    term.onResize(({ cols, rows }) => push({ t: 'r', c: cols, r: rows }));
    const onWindow = () => fit.fit();
    window.addEventListener('resize', onWindow);
    stream(
      'shell.open',
      { mode: 'pty', cols: term.cols, rows: term.rows, term: 'xterm-256color' },
      node,
      (l) => {
        if (l.session) {
          session = l.session;
          flush();
        }
        const d = l.data as { o?: string; e?: string; ready?: { user: string } } | undefined;
        if (d?.ready) setStatus(`connected to ${node} as ${d.ready.user}`);
        const out = d?.o ?? d?.e;
        if (out) term.write(fromBase64(out));
        if (l.result) setStatus('the session ended');
        if (l.error) setStatus(`${l.error.message} (${l.error.code})`);
      },
      abort.signal,
    ).catch((e) => !abort.signal.aborted && setStatus((e as Error).message));
    term.focus();
    return () => {
      abort.abort();
      window.removeEventListener('resize', onWindow);
      term.dispose();
    };
  }, [node]);
  return (
    <div>
      <p class="muted" role="status">
        {status}
      </p>
      <div class="term-host" ref={host} />
    </div>
  );
}
