/** The `host_daemons` table: the daemons the agent runs on the host, and their last seen process. */
import type { Db } from '../store/index.ts';
import type { DaemonSpec } from './daemon-spec.ts';

/** A daemon row. */
export interface DaemonRow {
  name: string;
  spec: DaemonSpec;
  wanted: boolean;
  pid: number | null;
  pidStart: string | null;
  startedAt: number | null;
  restarts: number;
}

interface Raw {
  name: string;
  spec: string;
  wanted: number;
  pid: number | null;
  pid_start: string | null;
  started_at: number | null;
  restarts: number;
}

/** Repository of host daemons. */
export class DaemonRepo {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** One daemon, or undefined. */
  get(name: string): DaemonRow | undefined {
    const raw = this.#db.prepare('SELECT * FROM host_daemons WHERE name = ?').get(name) as Raw | undefined;
    return raw && fromRaw(raw);
  }

  /** Every daemon, by name. */
  list(): DaemonRow[] {
    return (this.#db.prepare('SELECT * FROM host_daemons ORDER BY name').all() as Raw[]).map(fromRaw);
  }

  /** Records a daemon the agent should run (or keeps its row, with the new spec). */
  want(spec: DaemonSpec, wanted: boolean): void {
    this.#db
      .prepare(
        `INSERT INTO host_daemons (name, spec, wanted, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, wanted = excluded.wanted,
           updated_at = excluded.updated_at`,
      )
      .run(spec.name, JSON.stringify(spec), wanted ? 1 : 0, Date.now());
  }

  /** Sets whether it should run. */
  setWanted(name: string, wanted: boolean): void {
    this.#db
      .prepare('UPDATE host_daemons SET wanted = ?, updated_at = ? WHERE name = ?')
      .run(wanted ? 1 : 0, Date.now(), name);
  }

  /** Records the process the supervisor saw. */
  setProcess(
    name: string,
    p: { pid: number | null; pidStart: string | null; startedAt: number | null; restarts: number },
  ): void {
    this.#db
      .prepare(
        'UPDATE host_daemons SET pid = ?, pid_start = ?, started_at = ?, restarts = ?, updated_at = ? WHERE name = ?',
      )
      .run(p.pid, p.pidStart, p.startedAt, p.restarts, Date.now(), name);
  }

  /** Deletes a daemon's row. */
  delete(name: string): void {
    this.#db.prepare('DELETE FROM host_daemons WHERE name = ?').run(name);
  }
}

function fromRaw(r: Raw): DaemonRow {
  return {
    name: r.name,
    spec: JSON.parse(r.spec) as DaemonSpec,
    wanted: r.wanted === 1,
    pid: r.pid,
    pidStart: r.pid_start,
    startedAt: r.started_at,
    restarts: r.restarts,
  };
}
