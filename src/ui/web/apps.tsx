/**
 * The Apps page: every app across the fleet (from the nodes' telemetry, live), and what an
 * operator does with them: deploy (upload a bundle or give a URL), restart, stop, start,
 * rollback to a chosen release, env (names and masked values; set and unset), live logs. A button
 * shows only when the key's grant allows its action; a refusal shows the node's own words.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, call, deployUpload, stream } from './api.tsx';
import { can, type Fleet } from './model.tsx';

/** A note under the page's title: what happened, or the server's refusal. */
export type Notice = { kind: 'ok' | 'error'; text: string } | null;

/** Runs an action for a button and reports it. */
async function act(setNotice: (n: Notice) => void, what: string, run: () => Promise<unknown>) {
  setNotice({ kind: 'ok', text: `${what}…` });
  try {
    await run();
    setNotice({ kind: 'ok', text: `${what}: done` });
  } catch (err) {
    const e = err as ApiError;
    setNotice({ kind: 'error', text: `${what}: ${e.message}${e.code ? ` (${e.code})` : ''}` });
  }
}

/** The Apps page. */
export function AppsPage({ fleet }: { fleet: Fleet }) {
  const [notice, setNotice] = useState<Notice>(null);
  const [logs, setLogs] = useState<{ node: string; app: string } | null>(null);
  const [detail, setDetail] = useState<{ node: string; app: string } | null>(null);
  const write = can(fleet.me, 'write');
  const rows = fleet.nodes
    .flatMap((n) => (n.telemetry?.apps ?? []).map((a) => ({ node: n.name, ...a })))
    .sort((x, y) => `${x.node}/${x.name}`.localeCompare(`${y.node}/${y.name}`));
  return (
    <section>
      <h1>Apps</h1>
      {notice && (
        <p class={`notice notice-${notice.kind}`} role="status">
          {notice.text}
        </p>
      )}
      {write && <DeployForm fleet={fleet} setNotice={setNotice} />}
      <table class="apps">
        <thead>
          <tr>
            <th>node</th>
            <th>app</th>
            <th>status</th>
            <th>release</th>
            <th>restarts</th>
            <th>CPU</th>
            <th>memory</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={8} class="muted">
                no apps yet
              </td>
            </tr>
          )}
          {rows.map((a) => (
            <tr key={`${a.node}/${a.name}`} data-app={`${a.node}/${a.name}`}>
              <td>{a.node}</td>
              <td>{a.name}</td>
              <td class={`status status-${a.status}`}>{a.status}</td>
              <td>{a.release ?? '–'}</td>
              <td>{a.restarts}</td>
              <td>{a.cpuPct == null ? '–' : `${a.cpuPct.toFixed(1)} %`}</td>
              <td>{a.memMb == null ? '–' : `${a.memMb.toFixed(0)} MB`}</td>
              <td class="actions">
                <button type="button" onClick={() => setLogs({ node: a.node, app: a.name })}>
                  logs
                </button>
                <button type="button" onClick={() => setDetail({ node: a.node, app: a.name })}>
                  releases & env
                </button>
                {write && (
                  <button
                    type="button"
                    onClick={() =>
                      act(setNotice, `restart ${a.name}`, () => call('apps.restart', { app: a.name }, a.node))
                    }
                  >
                    restart
                  </button>
                )}
                {write && a.status !== 'stopped' && (
                  <button
                    type="button"
                    onClick={() =>
                      act(setNotice, `stop ${a.name}`, () => call('apps.stop', { app: a.name }, a.node))
                    }
                  >
                    stop
                  </button>
                )}
                {write && a.status === 'stopped' && (
                  <button
                    type="button"
                    onClick={() =>
                      act(setNotice, `start ${a.name}`, () => call('apps.start', { app: a.name }, a.node))
                    }
                  >
                    start
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {detail && (
        <AppDetail
          key={`${detail.node}/${detail.app}`}
          {...detail}
          write={write}
          exec={can(fleet.me, 'exec')}
          setNotice={setNotice}
        />
      )}
      {logs && <LogView key={`${logs.node}/${logs.app}`} {...logs} onClose={() => setLogs(null)} />}
    </section>
  );
}

function DeployForm({ fleet, setNotice }: { fleet: Fleet; setNotice: (n: Notice) => void }) {
  const [picked, setNode] = useState('');
  // The entry until another is picked (the fleet may arrive after the form is drawn).
  const node = picked || fleet.entry || '';
  const [app, setApp] = useState('');
  const [url, setUrl] = useState('');
  const [progress, setProgress] = useState('');
  const file = useRef<HTMLInputElement>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    const bundle = file.current?.files?.[0];
    if (!app) return setNotice({ kind: 'error', text: 'give the app a name' });
    if (!bundle && !url)
      return setNotice({ kind: 'error', text: 'choose a bundle (.tar.gz) or give its URL' });
    void act(setNotice, `deploy ${app} to ${node}`, async () => {
      if (!bundle) return call('apps.deploy', { app, url }, node);
      let failure: ApiError | undefined;
      await deployUpload(node, app, bundle, (l) => {
        if (l.data) setProgress(JSON.stringify(l.data));
        if (l.error) failure = new ApiError(l.error.code, l.error.message);
      });
      setProgress('');
      if (failure) throw failure;
    });
  };
  return (
    <form class="deploy" onSubmit={submit}>
      <strong>Deploy</strong>
      <label>
        node{' '}
        <select name="node" value={node} onChange={(e) => setNode((e.target as HTMLSelectElement).value)}>
          {fleet.nodes.map((n) => (
            <option key={n.name} value={n.name}>
              {n.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        app <input name="app" value={app} onInput={(e) => setApp((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        bundle <input name="bundle" type="file" accept=".tar.gz,.tgz,application/gzip" ref={file} />
      </label>
      <label>
        or URL <input name="url" value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit" name="deploy">
        deploy
      </button>
      {progress && <span class="muted">{progress}</span>}
    </form>
  );
}

interface Release {
  id: string;
  status?: string;
  createdAt?: number;
}

/**
 * An app's releases (rollback to one) and env: names with masked values, set and unset for a key
 * that may (the `exec` grant; an app running as root needs an admin, which the node decides).
 */
function AppDetail(props: {
  node: string;
  app: string;
  write: boolean;
  exec: boolean;
  setNotice: (n: Notice) => void;
}) {
  const { node, app, write, exec, setNotice } = props;
  const [releases, setReleases] = useState<Release[] | null>(null);
  const [env, setEnv] = useState<unknown>(null);
  const [to, setTo] = useState('');
  const [err, setErr] = useState('');
  const loadEnv = () => call('apps.env.list', { app }, node).then(setEnv, (e) => setErr(e.message));
  useEffect(() => {
    call<Release[]>('apps.releases', { app }, node).then(setReleases, (e) => setErr(e.message));
    void loadEnv();
  }, [node, app]);
  // A set or unset asks for the names again.
  const envAct = (what: string, run: () => Promise<unknown>) => act(setNotice, what, run).then(loadEnv);
  const names = Array.isArray(env) ? env : env && typeof env === 'object' ? Object.keys(env as object) : [];
  return (
    <div class="panel">
      <h2>
        {app} on {node}
      </h2>
      {err && <p class="notice notice-error">{err}</p>}
      <h3>Releases</h3>
      <ul>
        {(releases ?? []).map((r) => (
          <li key={r.id}>
            {r.id} {r.status ?? ''} {r.createdAt ? new Date(r.createdAt).toLocaleString() : ''}
          </li>
        ))}
      </ul>
      {write && releases && releases.length > 1 && (
        <p>
          <select value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)}>
            <option value="">the previous release</option>
            {releases.map((r) => (
              <option key={r.id} value={r.id}>
                {r.id}
              </option>
            ))}
          </select>{' '}
          <button
            type="button"
            onClick={() =>
              act(setNotice, `rollback ${app}`, () => call('apps.rollback', to ? { app, to } : { app }, node))
            }
          >
            rollback
          </button>
        </p>
      )}
      <h3>Env</h3>
      {names.length === 0 ? (
        <p class="muted">no env values</p>
      ) : (
        <ul class="env">
          {names.map((n) => {
            const name = String(typeof n === 'object' ? (n as { name: string }).name : n);
            return (
              <li key={name} data-env={name}>
                {name} = ••••••{' '}
                {exec && (
                  <button
                    type="button"
                    onClick={() =>
                      envAct(`unset ${name} on ${app}`, () =>
                        call('apps.env.unset', { app, names: [name] }, node),
                      )
                    }
                  >
                    unset
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {exec && (
        <EnvForm
          onSet={(name, value) =>
            envAct(`set ${name} on ${app}`, () =>
              call('apps.env.set', { app, vars: { [name]: value } }, node),
            )
          }
        />
      )}
      {names.length > 0 && <p class="muted">env changes apply when the app next starts (restart it)</p>}
    </div>
  );
}

/** Sets one env value; the value is typed into a password field and never shown again. */
function EnvForm({ onSet }: { onSet: (name: string, value: string) => Promise<unknown> }) {
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  return (
    <form
      class="env-set"
      onSubmit={(e) => {
        e.preventDefault();
        // The node checks the name and the value's size; its refusal is shown as it says it.
        void onSet(name.trim(), value).then(() => setValue(''));
      }}
    >
      <input
        name="env-name"
        placeholder="NAME"
        value={name}
        onInput={(e) => setName((e.target as HTMLInputElement).value)}
      />{' '}
      <input
        name="env-value"
        type="password"
        autocomplete="off"
        placeholder="value"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
      />{' '}
      <button type="submit" name="env-set" disabled={!name.trim()}>
        set
      </button>
    </form>
  );
}

/** An app's log lines, followed live until closed. */
function LogView({ node, app, onClose }: { node: string; app: string; onClose: () => void }) {
  const [lines, setLines] = useState<string[]>([]);
  const [ended, setEnded] = useState('');
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const abort = new AbortController();
    stream(
      'apps.logs',
      { app, lines: 200, follow: true },
      node,
      (l) => {
        const more = (l.data as { lines?: string[] } | undefined)?.lines;
        if (more) setLines((old) => [...old, ...more].slice(-2000));
        if (l.error) setEnded(`${l.error.message} (${l.error.code})`);
      },
      abort.signal,
    ).catch((e) => !abort.signal.aborted && setEnded((e as Error).message));
    return () => abort.abort();
  }, [node, app]);
  useEffect(() => {
    box.current?.scrollTo(0, box.current.scrollHeight);
  }, [lines]);
  return (
    <div class="panel">
      <h2>
        logs of {app} on {node}{' '}
        <button type="button" onClick={onClose}>
          close
        </button>
      </h2>
      {ended && <p class="notice notice-error">{ended}</p>}
      <pre class="logs" ref={box}>
        {lines.join('\n')}
      </pre>
    </div>
  );
}
