/** The `apps` table: one row per app with its run spec, desired state and last seen process. */
import type { Db } from '../store/index.ts';
import type { RunSpec } from './spec.ts';

/** App status (docs/workloads.md). */
export type AppStatus = 'deploying' | 'running' | 'stopped' | 'failed' | 'crashloop';

/** An app row. */
export interface AppRow {
  name: string;
  tenant: string | null;
  /** The Unix user it runs as; null for an app from before per-app users (see migrations.ts). */
  runAs: string | null;
  /** Capabilities an admin gave it (`deploy --cap`); empty for none. */
  capabilities: string[];
  spec: RunSpec;
  desired: 'running' | 'stopped';
  status: AppStatus;
  release: string | null;
  pid: number | null;
  /** `/proc/PID/stat` start time of `pid`, to tell it from a reused pid. */
  pidStart: string | null;
  startedAt: number | null;
  restarts: number;
  /** The private port the live release listens on (issue 18); null before its first such deploy. */
  livePort: number | null;
  envChangedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

interface Raw {
  name: string;
  tenant: string | null;
  run_as: string | null;
  capabilities: string | null;
  spec: string;
  desired: 'running' | 'stopped';
  status: AppStatus;
  release: string | null;
  pid: number | null;
  pid_start: string | null;
  started_at: number | null;
  restarts: number;
  live_port: number | null;
  env_changed_at: number | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS: Record<string, string> = {
  tenant: 'tenant',
  runAs: 'run_as',
  capabilities: 'capabilities',
  spec: 'spec',
  desired: 'desired',
  status: 'status',
  release: 'release',
  pid: 'pid',
  pidStart: 'pid_start',
  startedAt: 'started_at',
  restarts: 'restarts',
  livePort: 'live_port',
  envChangedAt: 'env_changed_at',
};

/** Fields of an app that may change. */
export type AppPatch = Partial<Omit<AppRow, 'name' | 'createdAt' | 'updatedAt'>>;

/** Repository of apps. */
export class AppRepo {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** One app, or undefined. */
  get(name: string): AppRow | undefined {
    const raw = this.#db.prepare('SELECT * FROM apps WHERE name = ?').get(name) as Raw | undefined;
    return raw && fromRaw(raw);
  }

  /** Every app, by name. */
  list(): AppRow[] {
    return (this.#db.prepare('SELECT * FROM apps ORDER BY name').all() as Raw[]).map(fromRaw);
  }

  /** Creates an app. */
  insert(
    row: Pick<AppRow, 'name' | 'spec' | 'desired' | 'status'> & {
      tenant?: string | null;
      runAs?: string | null;
    },
  ): void {
    const now = Date.now();
    this.#db
      .prepare(
        `INSERT INTO apps (name, tenant, run_as, spec, desired, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.name,
        row.tenant ?? null,
        row.runAs ?? null,
        JSON.stringify(row.spec),
        row.desired,
        row.status,
        now,
        now,
      );
  }

  /** Updates some fields of an app. */
  update(name: string, patch: AppPatch): void {
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [key, value] of Object.entries(patch)) {
      const col = COLUMNS[key];
      if (!col || value === undefined) continue;
      sets.push(`${col} = ?`);
      values.push(key === 'spec' || key === 'capabilities' ? JSON.stringify(value) : value);
    }
    if (!sets.length) return;
    sets.push('updated_at = ?');
    values.push(Date.now(), name);
    this.#db.prepare(`UPDATE apps SET ${sets.join(', ')} WHERE name = ?`).run(...values);
  }

  /** Deletes an app and, by cascade, its releases, env and hook. */
  delete(name: string): void {
    this.#db.prepare('DELETE FROM apps WHERE name = ?').run(name);
  }
}

function fromRaw(r: Raw): AppRow {
  return {
    name: r.name,
    tenant: r.tenant,
    runAs: r.run_as,
    capabilities: r.capabilities ? (JSON.parse(r.capabilities) as string[]) : [],
    spec: JSON.parse(r.spec) as RunSpec,
    desired: r.desired,
    status: r.status,
    release: r.release,
    pid: r.pid,
    pidStart: r.pid_start,
    startedAt: r.started_at,
    restarts: r.restarts,
    livePort: r.live_port ?? null,
    envChangedAt: r.env_changed_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
