/**
 * The Node page: charts of the last hour from the node's telemetry history (CPU, memory, disk,
 * network; uPlot) and of its apps' CPU and memory (kept by the node itself), its apps' current
 * figures, its exposed services and forwards, and, for an
 * admin, the commands it accepted or refused (its audit log).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { call } from './api.tsx';
import { can, type Fleet, rate } from './model.tsx';

type Point = Record<string, number | null> & { ts: number };

const COLOURS = ['#2a7ae2', '#d9534f', '#5cb85c', '#f0ad4e', '#8e44ad', '#16a085', '#7f8c8d', '#c0392b'];

/** The node's own answer to `telemetry.history.apps`: shared timestamps, each app's columns. */
interface AppHistory {
  ts: number[];
  apps: Record<string, { cpuPct: (number | null)[]; memMb: (number | null)[] }>;
}

/** Per-app history as chart points: one field per app and figure (`cpuPct:NAME`, `memMb:NAME`). */
function appPoints(h: AppHistory): Point[] {
  return h.ts.map((ts, i) => {
    const p: Point = { ts };
    for (const [name, a] of Object.entries(h.apps)) {
      p[`cpuPct:${name}`] = a.cpuPct[i];
      p[`memMb:${name}`] = a.memMb[i];
    }
    return p;
  });
}

/** How often the charts are refreshed from the history. */
const REFRESH_MS = 10_000;

function Chart({ title, points, series }: { title: string; points: Point[]; series: [string, string][] }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const data: uPlot.AlignedData = [
      points.map((p) => p.ts / 1000),
      ...series.map(([field]) => points.map((p) => p[field] ?? null)),
    ];
    const plot = new uPlot(
      {
        title,
        width: 420,
        height: 160,
        // The x range from the data itself: a young history (one point, or a few seconds) gets a
        // minute either side. uPlot's own padding of an empty span is in years on a time scale,
        // and what it hands a range function then is already padded.
        scales: {
          x: {
            time: true,
            range: (u) => {
              const xs = u.data[0];
              const lo = xs[0] ?? Date.now() / 1000;
              const hi = xs[xs.length - 1] ?? lo;
              return hi - lo < 60 ? [lo - 60, hi + 60] : [lo, hi];
            },
          },
        },
        // Room for five-digit labels (memory in MB), which the default width cuts.
        axes: [{}, { size: 64 }],
        series: [{}, ...series.map(([, label], i) => ({ label, stroke: COLOURS[i % COLOURS.length] }))],
      },
      data,
      host.current!,
    );
    return () => plot.destroy();
  }, [points, title]);
  return <div class="chart" ref={host} data-chart={title} />;
}

interface AuditRow {
  at: number;
  kid: string;
  action: string;
  verdict: string;
  code: string | null;
  source?: string;
}

/** The Node page. */
export function NodePage({ fleet, name }: { fleet: Fleet; name: string }) {
  const node = fleet.nodes.find((n) => n.name === name);
  const [points, setPoints] = useState<Point[]>([]);
  const [apps, setApps] = useState<{ points: Point[]; names: string[] }>({ points: [], names: [] });
  const [forwards, setForwards] = useState<unknown[]>([]);
  const [audit, setAudit] = useState<AuditRow[] | null>(null);
  const [filter, setFilter] = useState('');
  const [err, setErr] = useState('');
  const admin = can(fleet.me, 'admin');
  useEffect(() => {
    const load = () =>
      call<{ points: Point[] }>('telemetry.history', { node: name }).then(
        (h) => setPoints(h.points),
        (e) => setErr((e as Error).message),
      );
    // Per-app figures are kept by the node itself (src/telemetry/app-history.ts): asked there.
    const loadApps = () =>
      call<AppHistory>('telemetry.history.apps', {}, name).then(
        (h) => setApps({ points: appPoints(h), names: Object.keys(h.apps).sort() }),
        (e) => setErr((e as Error).message),
      );
    void load();
    void loadApps();
    call<unknown[]>('tunnels.forward.list', {}, name).then(setForwards, () => setForwards([]));
    if (admin) call<AuditRow[]>('audit.list', { limit: 200 }, name).then(setAudit, (e) => setErr(e.message));
    const t = setInterval(() => {
      void load();
      void loadApps();
    }, REFRESH_MS);
    return () => clearInterval(t);
  }, [name, admin]);
  const t = node?.telemetry;
  const shown = (audit ?? []).filter((r) => !filter || JSON.stringify(r).includes(filter));
  return (
    <section>
      <h1>{name}</h1>
      {err && <p class="notice notice-error">{err}</p>}
      {!node && <p class="muted">no such node in the fleet</p>}
      {t && (
        <p class="muted">
          version {t.version}, {t.cpu.cores} cores, network in {rate(t.net.rxBps)}, out {rate(t.net.txBps)}
        </p>
      )}
      <div class="charts">
        <Chart title="CPU %" points={points} series={[['cpuPct', 'cpu %']]} />
        <Chart
          title="memory MB"
          points={points}
          series={[
            ['memUsedMb', 'used'],
            ['memTotalMb', 'total'],
          ]}
        />
        <Chart
          title="disk GB"
          points={points}
          series={[
            ['diskUsedGb', 'used'],
            ['diskTotalGb', 'total'],
          ]}
        />
        <Chart
          title="network B/s"
          points={points}
          series={[
            ['rxBps', 'in'],
            ['txBps', 'out'],
          ]}
        />
        {apps.names.length > 0 && (
          <>
            <Chart
              title="apps CPU %"
              points={apps.points}
              series={apps.names.map((n) => [`cpuPct:${n}`, n] as [string, string])}
            />
            <Chart
              title="apps memory MB"
              points={apps.points}
              series={apps.names.map((n) => [`memMb:${n}`, n] as [string, string])}
            />
          </>
        )}
      </div>
      <h2>Apps</h2>
      <ul>
        {(t?.apps ?? []).map((a) => (
          <li key={a.name}>
            {a.name}: {a.status}, CPU {a.cpuPct == null ? '–' : `${a.cpuPct.toFixed(1)} %`}, memory{' '}
            {a.memMb == null ? '–' : `${a.memMb.toFixed(0)} MB`}
          </li>
        ))}
      </ul>
      <h2>Services</h2>
      <ul>
        {(t?.services ?? []).map((s) => (
          <li key={s.name}>
            {s.name} → port {s.port}
          </li>
        ))}
      </ul>
      <h2>Forwards</h2>
      <pre class="small">{forwards.length ? JSON.stringify(forwards, null, 1) : 'none'}</pre>
      {audit && (
        <>
          <h2>Audit</h2>
          <input
            placeholder="filter"
            value={filter}
            onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          />
          <table class="audit">
            <tbody>
              {shown.map((r, i) => (
                <tr key={i}>
                  <td>{new Date(r.at).toLocaleTimeString()}</td>
                  <td>{r.verdict}</td>
                  <td>{r.action}</td>
                  <td>{r.code ?? ''}</td>
                  <td>{r.kid?.slice(0, 8)}</td>
                  <td>{r.source ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
