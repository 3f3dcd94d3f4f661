/** The Fleet page: the topology graph and a table of every node, live. */
import { ago, type Fleet, pct, usage } from './model.tsx';
import { Topology } from './topology.tsx';

/** The Fleet page. */
export function FleetPage({ fleet, now }: { fleet: Fleet; now: number }) {
  const nodes = [...fleet.nodes].sort((a, b) => a.name.localeCompare(b.name));
  return (
    <section>
      <h1>Fleet</h1>
      <p class="muted">
        {nodes.length} nodes, through {fleet.entry ?? '…'}; solid lines are direct, dashed relayed, dotted
        punched.
      </p>
      <Topology nodes={nodes} edges={fleet.edges} />
      <table class="nodes">
        <thead>
          <tr>
            <th>node</th>
            <th>state</th>
            <th>path</th>
            <th>CPU</th>
            <th>memory</th>
            <th>disk</th>
            <th>apps</th>
            <th>version</th>
            <th>last seen</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => {
            const t = n.telemetry;
            const running = t?.apps.filter((a) => a.status === 'running').length ?? 0;
            return (
              <tr key={n.name} data-node={n.name}>
                <td>
                  <a href={`#/node/${encodeURIComponent(n.name)}`}>{n.name}</a>
                </td>
                <td class={`state state-${n.state}`}>{n.state}</td>
                <td>
                  {n.connection}
                  {n.rttMs != null ? ` · ${n.rttMs.toFixed(1)} ms` : ''}
                </td>
                <td>{pct(t?.cpu.pct)}</td>
                <td>{usage(t?.mem.usedMb, t?.mem.totalMb, 'MB')}</td>
                <td>{usage(t?.disk.usedGb, t?.disk.totalGb, 'GB')}</td>
                <td>{t ? `${running} / ${t.apps.length}` : '–'}</td>
                <td>{t?.version ?? '–'}</td>
                <td>{n.self ? 'now' : ago(t?.ts, now)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
