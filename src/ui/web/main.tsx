/**
 * The dashboard (issue 17, docs/ui.md): a Preact page served by `plexus ui`. It takes its
 * secret from the link, follows the fleet over server-sent events, and routes by the URL
 * fragment: #/fleet, #/apps, #/terminal, #/node/NAME.
 */
import '@xterm/xterm/css/xterm.css';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { forgetKey, loadKey, type StoredKey } from './agent-client.tsx';
import { AGENT_MODE, followFleet, loadSecret, signWithBrowserKey } from './api.tsx';
import { AppsPage } from './apps.tsx';
import { FleetPage } from './fleet.tsx';
import { KeysPage } from './keys.tsx';
import { KeyLogin } from './login.tsx';
import type { Fleet } from './model.tsx';
import { NodePage } from './node.tsx';
import { TerminalPage } from './terminal.tsx';

const EMPTY: Fleet = { at: 0, entry: null, me: null, nodes: [], edges: [], problem: null };

function useRoute(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

function App({ secret }: { secret: string | null }) {
  const [fleet, setFleet] = useState<Fleet>(EMPTY);
  const [down, setDown] = useState('');
  const [now, setNow] = useState(Date.now());
  const route = useRoute();
  useEffect(() => {
    if (!secret) return;
    const stop = followFleet((s) => {
      setFleet(s as Fleet);
      setDown('');
    }, setDown);
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      stop();
      clearInterval(tick);
    };
  }, [secret]);
  if (!secret)
    return (
      <main>
        <h1>plexus</h1>
        <p>Open this dashboard with the link that plexus ui printed: it carries this launch's secret.</p>
      </main>
    );
  const page = route[0] || 'fleet';
  const tabs: [string, string][] = [
    ['fleet', 'Fleet'],
    ['apps', 'Apps'],
    ['terminal', 'Terminal'],
    ['keys', 'Keys & tokens'],
  ];
  return (
    <div class="shell">
      <nav>
        <strong>plexus</strong>
        {tabs.map(([id, label]) => (
          <a key={id} href={`#/${id}`} class={page === id ? 'active' : ''}>
            {label}
          </a>
        ))}
        <span class="me" data-role={fleet.me?.role ?? ''}>
          {fleet.me ? `key ${fleet.me.kid.slice(0, 8)}… · ${fleet.me.role}` : 'signing in…'}
        </span>
        {AGENT_MODE && (
          <button type="button" onClick={() => forgetKey().then(() => location.reload())}>
            forget key
          </button>
        )}
      </nav>
      <main data-ready={fleet.nodes.length > 0 ? 'yes' : 'no'}>
        {(down || fleet.problem) && <p class="notice notice-error">{down || fleet.problem}</p>}
        {page === 'fleet' && <FleetPage fleet={fleet} now={now} />}
        {page === 'apps' && <AppsPage fleet={fleet} />}
        {page === 'terminal' && <TerminalPage fleet={fleet} node={route[1]} />}
        {page === 'keys' && <KeysPage fleet={fleet} />}
        {page === 'node' && route[1] && <NodePage fleet={fleet} name={route[1]} />}
      </main>
    </div>
  );
}

/** On an agent's /ui/: the key imported into this browser, or the form to import it. */
function AgentApp() {
  const [key, setKey] = useState<StoredKey | null | undefined>(undefined);
  useEffect(() => {
    loadKey().then(
      (k) => setKey(k ?? null),
      () => setKey(null),
    );
  }, []);
  if (key === undefined) return <p class="boot">loading…</p>;
  if (key === null) return <KeyLogin onKey={setKey} />;
  signWithBrowserKey(key);
  return <App secret="in-browser key" />;
}

const root = document.getElementById('root')!;
root.textContent = '';
render(AGENT_MODE ? <AgentApp /> : <App secret={loadSecret()} />, root);
