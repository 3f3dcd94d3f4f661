/**
 * The Keys & tokens page: the operator keys the fleet knows with their grants, and the join
 * tokens made on a node (admin): create one and copy its install command, revoke one, see how
 * many uses remain. Token actions run on the node that holds the admin key (chosen here; the
 * entry by default), since that key signs the token's certificate.
 */
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, call } from './api.tsx';
import { ago, can, type Fleet } from './model.tsx';

interface KeyRow {
  kid: string;
  role: string;
  tenant: string | null;
  exec: boolean;
  shell: boolean;
  state: string;
  expiresAt: number | null;
  source: string;
}

interface TokenRow {
  id: string;
  createdAt: number;
  expiresAt: number;
  uses: number;
  used: number;
  state: string;
  tags: string[];
}

/** The Keys & tokens page. */
export function KeysPage({ fleet }: { fleet: Fleet }) {
  const admin = can(fleet.me, 'admin');
  const [picked, setNode] = useState('');
  const node = picked || fleet.entry || '';
  const [keys, setKeys] = useState<KeyRow[]>([]);
  const [tokens, setTokens] = useState<TokenRow[] | null>(null);
  const [made, setMade] = useState<{ token: string; id: string } | null>(null);
  const [ttl, setTtl] = useState('3600');
  const [uses, setUses] = useState('1');
  const [note, setNote] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const failed = (what: string) => (e: ApiError) =>
    setNote({ kind: 'error', text: `${what}: ${e.message} (${e.code})` });
  const reload = () => {
    call<KeyRow[]>('operator.list').then(setKeys, failed('operator keys'));
    if (admin && node) call<TokenRow[]>('mesh.token.list', {}, node).then(setTokens, failed('tokens'));
  };
  useEffect(reload, [node, admin]);
  const create = async () => {
    try {
      const r = await call<{ token: string; id: string }>(
        'mesh.token.create',
        { ttlS: Number(ttl), uses: Number(uses) },
        node,
      );
      setMade(r);
      setNote({ kind: 'ok', text: `token ${r.id} created` });
      reload();
    } catch (e) {
      failed('create a token')(e as ApiError);
    }
  };
  const revoke = async (id: string) => {
    try {
      await call('mesh.token.revoke', { id }, node);
      setNote({ kind: 'ok', text: `token ${id} revoked` });
      reload();
    } catch (e) {
      failed(`revoke ${id}`)(e as ApiError);
    }
  };
  const install = made ? `sudo ./install.sh --token ${made.token}` : '';
  return (
    <section>
      <h1>Keys &amp; tokens</h1>
      {note && <p class={`notice notice-${note.kind}`}>{note.text}</p>}
      <h2>Operator keys</h2>
      <table class="keys">
        <thead>
          <tr>
            <th>key</th>
            <th>role</th>
            <th>tenant</th>
            <th>exec</th>
            <th>shell</th>
            <th>state</th>
            <th>expires</th>
            <th>source</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.kid}>
              <td>{k.kid}</td>
              <td>{k.role}</td>
              <td>{k.tenant ?? '–'}</td>
              <td>{k.exec ? 'yes' : 'no'}</td>
              <td>{k.shell ? 'yes' : 'no'}</td>
              <td>{k.state}</td>
              <td>{k.expiresAt ? new Date(k.expiresAt).toLocaleString() : 'never'}</td>
              <td>{k.source}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {admin && (
        <>
          <h2>Join tokens</h2>
          <p>
            on{' '}
            <select value={node} onChange={(e) => setNode((e.target as HTMLSelectElement).value)}>
              {fleet.nodes.map((n) => (
                <option key={n.name} value={n.name}>
                  {n.name}
                </option>
              ))}
            </select>{' '}
            lifetime (s){' '}
            <input size={6} value={ttl} onInput={(e) => setTtl((e.target as HTMLInputElement).value)} /> uses{' '}
            <input size={3} value={uses} onInput={(e) => setUses((e.target as HTMLInputElement).value)} />{' '}
            <button type="button" name="create-token" onClick={create}>
              create a token
            </button>
          </p>
          {made && (
            <p class="panel">
              On the new server: <code class="install">{install}</code>{' '}
              <button type="button" onClick={() => navigator.clipboard?.writeText(install)}>
                copy
              </button>
            </p>
          )}
          <table class="tokens">
            <thead>
              <tr>
                <th>id</th>
                <th>state</th>
                <th>uses left</th>
                <th>expires</th>
                <th>created</th>
                <th>tags</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(tokens ?? []).map((t) => (
                <tr key={t.id} data-token={t.id}>
                  <td>{t.id}</td>
                  <td>{t.state}</td>
                  <td>
                    {Math.max(0, t.uses - t.used)} of {t.uses}
                  </td>
                  <td>{new Date(t.expiresAt).toLocaleString()}</td>
                  <td>{ago(t.createdAt)}</td>
                  <td>{t.tags.join(', ')}</td>
                  <td>
                    {t.state === 'active' && (
                      <button type="button" onClick={() => revoke(t.id)}>
                        revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
