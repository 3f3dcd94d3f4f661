/**
 * The kernel redirect of apps' declared ports (issue 18). Each app with a port has one rule in
 * the agent's nftables table (`inet plexus`): TCP to the app's declared port on a local address
 * goes to the private port of its live release, both from outside (prerouting) and from this
 * host, loopback included (output). A deploy replaces the rule: connections opened from then on
 * reach the new release, and those already open keep their conntrack mapping to the old one,
 * which drains on its own. The agent is not in the data path: it pays nothing per byte, and its
 * restart (an upgrade, a crash, kill -9) leaves the rules, so the declared port stays served.
 *
 * Every change rewrites the whole table in one `nft -f` transaction (delete and re-create), so
 * the kernel only ever holds a complete rule set: never two rules for a port, never none between
 * an old and a new one. An agent that starts rewrites it from the live ports it persisted, which
 * also drops the rules of apps that are gone.
 */
import { spawn } from 'node:child_process';
import { NFT_TABLE, NFT_TIMEOUT_MS } from './constants.ts';

/** Where and how the rules are applied: the table's name and the nft command (tests prefix `ip netns exec`). */
export interface KernelRedirectInit {
  table?: string;
  nft?: string[];
  /** Turned off in the config: the table is dropped at start and deploys take the fallback. */
  off?: boolean;
}

/** One app's redirect: its declared port to its live release's private port. */
export interface Redirect {
  publicPort: number;
  port: number;
}

const TABLE_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const APP_COMMENT = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The app's declared ports redirected by the kernel to their live releases' private ports. */
export class KernelRedirect {
  readonly name = 'kernel';
  readonly #routes = new Map<string, Redirect>();
  readonly #table: string;
  readonly #nft: string[];
  /** Applies one table at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(init: KernelRedirectInit = {}) {
    this.#table = init.table ?? NFT_TABLE;
    if (!TABLE_NAME.test(this.#table)) throw new Error(`invalid nftables table name '${this.#table}'`);
    this.#nft = init.nft ?? ['nft'];
  }

  /**
   * Takes the table over with `routes` (from the database: the apps that run, with their live
   * ports) in one transaction, dropping whatever else it held. Throws with nft's reason when the
   * kernel redirect cannot work here (no nft, no CAP_NET_ADMIN, no nat support).
   */
  async reconcile(routes: Map<string, Redirect>): Promise<void> {
    await this.#serial(async () => {
      await this.#apply(renderTable(this.#table, routes));
      this.#routes.clear();
      for (const [app, r] of routes) this.#routes.set(app, { ...r });
    });
  }

  /**
   * Deletes the table, if there is one (the redirect was turned off in the config: a rule left
   * from before would send a declared port away from the release that now listens on it).
   * Never throws: without nft or root there is no table of ours either.
   */
  async drop(): Promise<void> {
    await this.#serial(() =>
      this.#apply(`table inet ${this.#table} {}\ndelete table inet ${this.#table}\n`),
    ).catch(() => {});
    this.#routes.clear();
  }

  /** Sends new connections to `app`'s declared port to `port`; resolves once the kernel does. */
  async route(app: string, publicPort: number, port: number): Promise<void> {
    await this.#serial(async () => {
      const next = new Map(this.#routes);
      next.set(app, { publicPort, port });
      await this.#apply(renderTable(this.#table, next));
      this.#routes.set(app, { publicPort, port });
    });
  }

  /** Removes `app`'s rule (it stopped or was removed): its declared port is nobody's again. */
  async release(app: string): Promise<void> {
    await this.#serial(async () => {
      if (!this.#routes.has(app)) return;
      const next = new Map(this.#routes);
      next.delete(app);
      await this.#apply(renderTable(this.#table, next));
      this.#routes.delete(app);
    });
  }

  /** The private port `app`'s declared port goes to, if it has a rule. */
  upstreamOf(app: string): number | undefined {
    return this.#routes.get(app)?.port;
  }

  /** Whether `app` has the rule of `publicPort`. */
  holds(app: string, publicPort: number): boolean {
    return this.#routes.get(app)?.publicPort === publicPort;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Feeds `script` to `nft -f -`; rejects with nft's first error line. */
  #apply(script: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const [cmd, ...args] = this.#nft;
      const child = spawn(cmd, [...args, '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), NFT_TIMEOUT_MS);
      child.stderr.on('data', (c: Buffer) => {
        if (err.length < 4096) err += c.toString();
      });
      child.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(e.code === 'ENOENT' ? `${cmd} is not installed (Debian: nftables)` : e.message));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) return resolve();
        const line = err.split('\n').find((l) => l.trim()) ?? `exit ${code ?? signal}`;
        reject(new Error(`nft: ${line.trim()}`));
      });
      child.stdin.on('error', () => {}); // nft gone early: its exit says why
      child.stdin.end(script);
    });
  }
}

/**
 * The nft script that replaces table `inet TABLE` by one holding `routes` (the leading `table`
 * line makes the delete valid when it does not exist yet; nft applies the file as one
 * transaction). Only TCP to a local address is redirected (`fib daddr type local`): this host's
 * connections to other machines on that port, and traffic it forwards, are left alone.
 */
export function renderTable(table: string, routes: Map<string, Redirect>): string {
  const rules: string[] = [];
  const seen = new Set<number>();
  for (const [app, r] of [...routes].sort(([a], [b]) => a.localeCompare(b))) {
    for (const p of [r.publicPort, r.port])
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`invalid port ${p} for app '${app}'`);
    // One rule per declared port: a second app's rule on it would never match (the first wins).
    if (seen.has(r.publicPort)) throw new Error(`port ${r.publicPort} is redirected for two apps`);
    seen.add(r.publicPort);
    const comment = APP_COMMENT.test(app) ? ` comment "app ${app}"` : '';
    rules.push(`    fib daddr type local tcp dport ${r.publicPort} redirect to :${r.port}${comment}`);
  }
  const chain = (name: string, hook: string, priority: string) =>
    [
      `  chain ${name} {`,
      `    type nat hook ${hook} priority ${priority}; policy accept;`,
      ...rules,
      '  }',
    ].join('\n');
  return [
    `table inet ${table} {}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    chain('prerouting', 'prerouting', 'dstnat'),
    chain('output', 'output', '-100'),
    '}',
    '',
  ].join('\n');
}
