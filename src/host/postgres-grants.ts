/**
 * A PostgreSQL role and database for an app (`service install postgresql --for APP`, issue 18).
 * The password is random, goes to psql on its stdin (never in a process's arguments, where any
 * local user could read it in /proc), and from there only into the app's encrypted env; it is
 * never printed or logged. Other roles lose CONNECT on the app's database.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ServiceStateError } from './errors.ts';

/** The role and database name of an app (an app name is a DNS label: `-` becomes `_`). */
export function grantNames(app: string): { role: string; db: string } {
  const id = `app_${app.replace(/-/g, '_')}`;
  return { role: id, db: id };
}

/** Runs SQL as the postgres superuser over the local socket; stdout on success. */
function psql(sql: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        'psql',
        '-X',
        '-q',
        '-A',
        '-t',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        '/var/run/postgresql',
        '-d',
        'postgres',
        '-f',
        '-',
      ],
      { timeout: 30_000 },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const line = String(stderr || err.message)
          .trim()
          .split('\n')[0]
          .slice(0, 300);
        reject(new ServiceStateError('SERVICE_SQL_FAILED', `PostgreSQL refused: ${line}`));
      },
    );
    child.stdin?.end(sql);
  });
}

/**
 * Makes (or updates the password of) the app's role and database and returns the env the app
 * connects with: DATABASE_URL and the libpq PG* variables.
 */
export async function grantDatabase(app: string): Promise<Record<string, string>> {
  const { role, db } = grantNames(app);
  const password = randomBytes(24).toString('base64url');
  const out = await psql(
    [
      `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE "${role}" LOGIN; END IF; END $$;`,
      `ALTER ROLE "${role}" WITH LOGIN PASSWORD '${password}';`,
      `SELECT 'CREATE DATABASE "${db}" OWNER "${role}"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${db}')\\gexec`,
      `REVOKE ALL ON DATABASE "${db}" FROM PUBLIC;`,
      `GRANT ALL ON DATABASE "${db}" TO "${role}";`,
      'SHOW port;',
    ].join('\n'),
  );
  const port = out.trim().split('\n').at(-1)?.trim() || '5432';
  return {
    DATABASE_URL: `postgres://${role}:${password}@127.0.0.1:${port}/${db}`,
    PGHOST: '127.0.0.1',
    PGPORT: port,
    PGUSER: role,
    PGPASSWORD: password,
    PGDATABASE: db,
  };
}
