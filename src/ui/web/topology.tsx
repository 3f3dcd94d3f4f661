/**
 * The fleet's topology: nodes placed by d3-force (links pull, nodes repel), edges drawn by kind,
 * solid for direct, dashed for relayed, dotted for punched, each labelled with its RTT. The
 * layout is computed when the set of nodes or edges changes, not on every snapshot, so the graph
 * stays still while figures update.
 */
import {
  forceCenter,
  forceCollide,
  forceLink,
  forceManyBody,
  forceSimulation,
  type SimulationNodeDatum,
} from 'd3-force';
import { useMemo } from 'preact/hooks';
import type { Edge, NodeRow } from './model.tsx';

const W = 560;
const H = 320;

interface Placed extends SimulationNodeDatum {
  id: string;
}

function layout(names: string[], edges: Edge[]): Map<string, { x: number; y: number }> {
  const nodes: Placed[] = names.map((id, i) => ({
    id,
    // A deterministic start (a circle) so the same fleet always gets the same picture.
    x: W / 2 + 120 * Math.cos((2 * Math.PI * i) / names.length),
    y: H / 2 + 120 * Math.sin((2 * Math.PI * i) / names.length),
  }));
  const links = edges
    .filter((e) => names.includes(e.a) && names.includes(e.b))
    .map((e) => ({ source: e.a, target: e.b }));
  const sim = forceSimulation(nodes)
    .force(
      'link',
      forceLink<Placed, { source: string; target: string }>(links)
        .id((d) => d.id)
        .distance(180),
    )
    .force('charge', forceManyBody().strength(-400))
    .force('center', forceCenter(W / 2, H / 2))
    .force('collide', forceCollide(50))
    .stop();
  sim.tick(300);
  const pad = 40;
  return new Map(
    nodes.map((n) => [
      n.id,
      { x: Math.min(W - pad, Math.max(pad, n.x ?? 0)), y: Math.min(H - pad, Math.max(pad, n.y ?? 0)) },
    ]),
  );
}

/** The topology graph of `nodes` and `edges`. */
export function Topology({ nodes, edges }: { nodes: NodeRow[]; edges: Edge[] }) {
  const names = nodes.map((n) => n.name).sort();
  const shape = `${names.join(',')}|${edges
    .map((e) => [e.a, e.b].sort().join('-'))
    .sort()
    .join(',')}`;
  const pos = useMemo(() => layout(names, edges), [shape]);
  return (
    <svg class="topology" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="topology of the fleet">
      {edges.map((e) => {
        const a = pos.get(e.a);
        const b = pos.get(e.b);
        if (!a || !b) return null;
        return (
          <g
            class={`edge edge-${e.kind}`}
            data-edge={[e.a, e.b].sort().join('--')}
            data-kind={e.kind}
            key={`${e.a}-${e.b}`}
          >
            <line x1={a.x} y1={a.y} x2={b.x} y2={b.y} />
            <text x={(a.x + b.x) / 2} y={(a.y + b.y) / 2 - 6}>
              {e.kind}
              {e.rttMs != null ? ` ${e.rttMs.toFixed(e.rttMs < 10 ? 1 : 0)} ms` : ''}
            </text>
          </g>
        );
      })}
      {nodes.map((n) => {
        const p = pos.get(n.name);
        if (!p) return null;
        return (
          <g class={`node node-${n.state}`} key={n.name} data-node={n.name}>
            <circle cx={p.x} cy={p.y} r={22} />
            <text x={p.x} y={p.y + 38}>
              {n.name}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
