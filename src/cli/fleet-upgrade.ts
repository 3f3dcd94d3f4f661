/**
 * `plexus upgrade --node all|NAME|tag:T --file PATH [--max-parallel N]`: sends a signed release
 * over the mesh to each node (the `node.upgrade` action, src/install/fleet-actions.ts), N at a
 * time, waits for each to report its new version or its rollback, stops after the first batch
 * with a failure, and prints node, old and new version and result.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { dataPaths } from '../config/paths.ts';
import type { AgentClient } from './client.ts';
import { dataDirOf } from './context.ts';
import { CliError, UsageError } from './errors.ts';
import { printTable } from './output.ts';

/** One command's share of the release (the node's PIECE_BYTES). */
const PIECE_BYTES = 4 * 1024 * 1024;

/** Upload frame: base64 in a JSON frame stays under the 1 MiB frame limit. */
const CHUNK_BYTES = 512 * 1024;
/** A node has this long to report its new version or its rollback (the health budget is 60 s). */
const NODE_BUDGET_MS = 180_000;

interface Row {
  node: string;
  old: string;
  new: string;
  result: string;
}

/** The nodes `spec` names: all, one name, or tag:T; this node (the entry) last. */
async function targetsOf(local: AgentClient, spec: string): Promise<string[]> {
  const self = (await local.call('node.status')) as { name: string; tags?: string[] };
  const peers = (await local.call('mesh.peers')) as { name: string; tags: string[]; state: string }[];
  if (spec === 'all') return [...peers.map((p) => p.name).sort(), self.name];
  if (spec.startsWith('tag:')) {
    const tag = spec.slice(4);
    const names = peers
      .filter((p) => p.tags.includes(tag))
      .map((p) => p.name)
      .sort();
    if (self.tags?.includes(tag)) names.push(self.name);
    if (!names.length) throw new UsageError(`no node has tag ${tag}`);
    return names;
  }
  return [spec];
}

async function* pieceFrames(piece: Buffer): AsyncGenerator<unknown> {
  for (let i = 0; i < piece.length; i += CHUNK_BYTES)
    yield { chunk: piece.subarray(i, i + CHUNK_BYTES).toString('base64') };
  yield { end: true };
}

/**
 * Sends the release in pieces, one command each (src/install/fleet-actions.ts says why); the
 * last one's answer is the upgrade starting.
 */
async function sendRelease(client: AgentClient, file: string, sums: string, sig: string) {
  const bytes = readFileSync(file);
  let answer: unknown;
  for (let offset = 0; offset < bytes.length; offset += PIECE_BYTES) {
    const piece = bytes.subarray(offset, offset + PIECE_BYTES);
    const args = { file: basename(file), sums, sig, total: bytes.length, offset, bytes: piece.length };
    answer = await client.call('node.upgrade', args, { input: pieceFrames(piece) });
  }
  return answer as { from: string; to: string };
}

/** The version a release tarball's name states (`plexus-VERSION-linux-ARCH.tar.gz`). */
function versionOfFile(file: string): string {
  return /^plexus-(.+)-linux-[a-z0-9]+\.tar\.gz$/.exec(basename(file))?.[1] ?? '?';
}

/** Upgrades one node and waits for the outcome. */
async function upgradeNode(
  client: AgentClient,
  node: string,
  file: string,
  sums: string,
  sig: string,
): Promise<Row> {
  let started: { from: string; to: string };
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  try {
    started = await sendRelease(client, file, sums, sig);
    process.stderr.write(`${node}: release sent in ${elapsed()}; the node verifies and restarts\n`);
  } catch (err) {
    // A refusal is the node's answer; a broken stream may be the upgrade restarting the agent
    // just as it answered, so the node's status says whether it started.
    const e = err as Error & { body?: { code?: string } };
    if (e.body?.code || !/stream|reset|closed|ECONNRESET/i.test(e.message)) {
      return { node, old: '?', new: '-', result: `refused: ${e.message}` };
    }
    started = { from: '?', to: versionOfFile(file) };
  }
  const end = Date.now() + NODE_BUDGET_MS;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 2_000));
    const s = (await client.call('node.upgrade.status').catch(() => undefined)) as
      | { version: string; last: { state: string; from?: string; to?: string; message?: string } | null }
      | undefined;
    // The node restarts meanwhile: no answer is expected for a while.
    if (!s?.last || s.last.to !== started.to || s.last.state === 'running') continue;
    const result =
      s.last.state === 'ok' ? 'ok' : `${s.last.state.replace('_', ' ')}: ${s.last.message ?? ''}`;
    process.stderr.write(`${node}: ${s.last.state.replace('_', ' ')} after ${elapsed()}\n`);
    return { node, old: s.last.from ?? started.from, new: s.version, result };
  }
  return { node, old: started.from, new: '?', result: `no outcome within ${NODE_BUDGET_MS / 1000} s` };
}

/** Runs the fleet upgrade; exits 1 when a node failed. */
export async function fleetUpgrade(
  cmd: Command,
  spec: string,
  file: string,
  maxParallel: number,
): Promise<void> {
  const o = cmd.optsWithGlobals() as { key?: string };
  const paths = dataPaths(dataDirOf(cmd));
  let sums: string;
  let sig: string;
  try {
    sums = readFileSync(join(file, '..', 'SHA256SUMS'), 'utf8');
    sig = readFileSync(join(file, '..', 'SHA256SUMS.sig'), 'utf8');
  } catch {
    throw new CliError(`no SHA256SUMS and SHA256SUMS.sig beside ${file}: nodes install signed releases only`);
  }
  const { socketClient } = await import('./client.ts');
  const { remoteClient } = await import('./remote-client.ts');
  const nodes = await targetsOf(socketClient(paths.socket), spec);
  const clientFor = (node: string) =>
    remoteClient({
      url: process.env.PLEXUS_API || undefined,
      socketPath: paths.socket,
      keyFile: o.key ?? process.env.PLEXUS_KEY ?? paths.adminKey,
      dataDir: paths.dataDir,
      node,
    });
  const rows: Row[] = [];
  let failed = false;
  for (let i = 0; i < nodes.length && !failed; i += maxParallel) {
    const batch = nodes.slice(i, i + maxParallel);
    process.stderr.write(`upgrading ${batch.join(', ')}…\n`);
    const done = await Promise.all(batch.map((n) => upgradeNode(clientFor(n), n, file, sums, sig)));
    rows.push(...done);
    failed = done.some((r) => r.result !== 'ok');
  }
  for (const n of nodes.slice(rows.length))
    rows.push({ node: n, old: '-', new: '-', result: 'skipped (an earlier node failed)' });
  printTable(
    ['NODE', 'OLD', 'NEW', 'RESULT'],
    rows.map((r) => [r.node, r.old, r.new, r.result]),
  );
  if (failed) throw new CliError('the fleet upgrade stopped at the first failing node (see the table)');
}
