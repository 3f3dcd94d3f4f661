/**
 * Who may do what to an app, through the real command service and the real `apps.*` actions
 * (issue 13): a tenant-limited key touches only its tenant's apps and cannot tell an app it may
 * not see from one that does not exist; choosing an app's command, user or env takes the exec
 * grant, while redeploying a new bundle with the stored spec takes only `write`; running an app
 * as root takes an admin's `--allow-root`. Deploys run real processes (as the app's own user
 * when the test runs as root).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inputHasher, signCommand } from '../../src/commands/envelope.ts';
import { ActionRegistry } from '../../src/core/actions.ts';
import type { Frame } from '../../src/core/frames.ts';
import { b64u, generateSigner, type Signer } from '../../src/crypto/ed25519.ts';
import { silentLogger } from '../../src/logging/index.ts';
import { type GrantPayload, signGrant } from '../../src/mesh/operators.ts';
import { openStore } from '../../src/store/index.ts';
import {
  createProcessBackend,
  Workloads,
  workloadsActions,
  workloadsMigrations,
} from '../../src/workloads/index.ts';
import { tarGzDir } from '../helpers/archives.ts';
import { freePort } from '../helpers/cluster.ts';
import { commandNode } from '../helpers/commands.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
const root = mkdtempSync(join(tmpdir(), 'plexus-authz-'));
chmodSync(root, 0o711); // apps run as users of their own, who pass through to their folders
const appsDir = join(root, 'data', 'apps');
const admin = generateSigner().signer;
const db = openStore(':memory:', workloadsMigrations);
const w = new Workloads(
  { appsDir, healthTimeoutMs: 15_000, stopGraceMs: 2_000 },
  {
    db,
    logger: silentLogger(),
    backend: createProcessBackend({ stopGraceMs: 2_000 }, { logger: silentLogger() }),
    masterKey: Buffer.alloc(32, 7),
  },
);
const actions = new ActionRegistry();
actions.register(...workloadsActions(w, { agentLog: join(root, 'agent.log') }));
const { membership, self, audit, service } = commandNode({ admin, actions });
let bundle: Buffer;

function grant(role: GrantPayload['role'], extra: Partial<GrantPayload> = {}): Signer {
  const key = generateSigner().signer;
  membership.operators.accept(
    signGrant({ kid: key.kid, pubkey: b64u(key.publicKey), role, at: Date.now(), ...extra }, admin),
  );
  return key;
}

/** Runs one signed command here; returns its last frame. */
async function run(
  key: Signer,
  action: string,
  args: Record<string, unknown>,
  input: unknown[] = [],
): Promise<Frame> {
  const frames: Frame[] = [];
  const h = inputHasher();
  for (const f of input) h.update(f);
  const signed = input.length ? { input: h.digest() } : {};
  const { envelope } = signCommand(key, { target: self, action, args, ...signed });
  const inputs = (async function* () {
    for (const f of input) yield f;
  })();
  await service.handle(envelope, inputs, async (f) => void frames.push(f), {
    via: 'http',
    signal: new AbortController().signal,
  });
  return frames.at(-1)!;
}

const codeOf = (f: Frame) => (f.type === 'error' ? f.error.code : 'ok');
const messageOf = (f: Frame) => (f.type === 'error' ? f.error.message : '');
const resultOf = (f: Frame) => (f.type === 'result' ? f.result : undefined);
const upload = () => [{ chunk: bundle.toString('base64') }, { end: true }];

before(async () => {
  bundle = await tarGzDir(FIXTURE);
  await w.start();
});

after(async () => {
  for (const a of w.list()) await w.removeApp(a.name).catch(() => {});
  await w.stop();
  killProcessesUnder(root);
  rmSync(root, { recursive: true, force: true });
});

describe('tenant-limited keys', () => {
  it('cannot touch an app with no tenant: env set, stop, deploy, logs are refused like an unknown app, and audited', async () => {
    // The replay: an admin's app with a secret, a key limited to tenant blue.
    const port = await freePort();
    const first = await run(
      admin,
      'apps.deploy',
      {
        app: 'billing',
        upload: {},
        cmd: 'node server.cjs',
        port,
        env: { DB_PASSWORD: 'hunter2-hunter2' },
      },
      upload(),
    );
    assert.equal(codeOf(first), 'ok', messageOf(first));
    const blue = grant('operator', { tenant: 'blue' });
    const attempts: [string, Record<string, unknown>, unknown[]][] = [
      ['apps.env.set', { app: 'billing', vars: { LD_PRELOAD: '/tmp/evil.so' } }, []],
      ['apps.stop', { app: 'billing' }, []],
      ['apps.restart', { app: 'billing' }, []],
      ['apps.logs', { app: 'billing', lines: 50 }, []],
      ['apps.env.list', { app: 'billing' }, []],
      ['apps.releases', { app: 'billing' }, []],
    ];
    for (const [action, args, input] of attempts) {
      const refused = await run(blue, action, args, input);
      const unknown = await run(blue, action, { ...args, app: 'nosuchapp' }, input);
      assert.equal(codeOf(refused), 'UNKNOWN_APP', `${action} on an admin's app`);
      assert.equal(codeOf(unknown), 'UNKNOWN_APP', `${action} on an app that does not exist`);
      assert.equal(
        messageOf(refused).replace('billing', 'X'),
        messageOf(unknown).replace('nosuchapp', 'X'),
        `${action}: the same answer`,
      );
    }
    // A deploy to the name cannot take the app over either; it learns only that the name is taken.
    assert.equal(
      codeOf(await run(blue, 'apps.deploy', { app: 'billing', upload: {} }, upload())),
      'APP_NAME_TAKEN',
    );
    // Nothing changed: the app still runs its one release, with its env, and no LD_PRELOAD.
    assert.equal(w.get('billing').status, 'running');
    assert.deepEqual(
      w.env.names('billing').map((v) => v.name),
      ['DB_PASSWORD'],
    );
    assert.equal(w.releases.list('billing').length, 1);
    const refusedRows = audit.list().filter((r) => r.kid === blue.kid && r.verdict === 'refused');
    assert.ok(
      refusedRows.some((r) => r.action === 'apps.env.set'),
      'the refusal is audited',
    );
    assert.ok(refusedRows.some((r) => r.action === 'apps.deploy'));
    // apps.list shows the key no app at all.
    assert.deepEqual(resultOf(await run(blue, 'apps.list', {})), []);
  });

  it('sees and touches its own apps, and a new app it deploys is its own', async () => {
    const blue = grant('operator', { tenant: 'blue', exec: true });
    const port = await freePort();
    const d = await run(blue, 'apps.deploy', { app: 'blue-web', upload: {}, port }, upload());
    assert.equal(codeOf(d), 'ok', messageOf(d));
    assert.equal(w.apps.get('blue-web')?.tenant, 'blue');
    assert.equal(codeOf(await run(blue, 'apps.env.set', { app: 'blue-web', vars: { A: '1' } })), 'ok');
    assert.equal(codeOf(await run(blue, 'apps.restart', { app: 'blue-web' })), 'ok');
    const names = (resultOf(await run(blue, 'apps.list', {})) as { name: string }[]).map((a) => a.name);
    assert.deepEqual(names, ['blue-web']);
    // Another tenant's key gets the unknown-app answer for it.
    const red = grant('operator', { tenant: 'red' });
    assert.equal(codeOf(await run(red, 'apps.stop', { app: 'blue-web' })), 'UNKNOWN_APP');
    assert.equal(w.get('blue-web').status, 'running');
  });
});

describe('deploy rights', () => {
  it('an operator without the exec grant cannot choose the command, user or env; a redeploy of a new bundle works', async () => {
    const port = await freePort();
    const setup = await run(
      admin,
      'apps.deploy',
      { app: 'api', upload: {}, cmd: 'node server.cjs', port },
      upload(),
    );
    assert.equal(codeOf(setup), 'ok', messageOf(setup));
    const op = grant('operator');
    const refusals: [string, Record<string, unknown>][] = [
      ['apps.deploy', { app: 'api', upload: {}, cmd: "sh -c 'id; head ../../../../keys/admin.key'" }],
      ['apps.deploy', { app: 'api', upload: {}, env: { LD_PRELOAD: '/tmp/x.so' } }],
      ['apps.deploy', { app: 'api', upload: {}, user: 'nobody' }],
      ['apps.deploy', { app: 'newapp', upload: {}, cmd: 'node server.cjs' }],
      ['apps.env.set', { app: 'api', vars: { LD_PRELOAD: '/tmp/x.so' } }],
      ['apps.env.unset', { app: 'api', names: ['X'] }],
    ];
    for (const [action, args] of refusals) {
      const f = await run(op, action, args, action === 'apps.deploy' ? upload() : []);
      assert.equal(codeOf(f), 'FORBIDDEN_ROLE', `${action} ${JSON.stringify(args)}`);
    }
    const before = w.get('api').release;
    // The same command as stored is not a change: it needs only write.
    const same = await run(op, 'apps.deploy', { app: 'api', upload: {}, cmd: 'node server.cjs' }, upload());
    assert.equal(codeOf(same), 'ok', messageOf(same));
    const redeploy = await run(op, 'apps.deploy', { app: 'api', upload: {} }, upload());
    assert.equal(codeOf(redeploy), 'ok', messageOf(redeploy));
    assert.notEqual(w.get('api').release, before);
    assert.equal(w.releases.get('api', w.get('api').release!)?.spec.cmd, 'node server.cjs');
    // With the grant, the command may change.
    const ops = grant('operator', { exec: true });
    const changed = await run(
      ops,
      'apps.deploy',
      { app: 'api', upload: {}, cmd: 'node ./server.cjs' },
      upload(),
    );
    assert.equal(codeOf(changed), 'ok', messageOf(changed));
  });

  it('root takes an admin-signed --allow-root; nobody else may ask for it', async () => {
    const ops = grant('operator', { exec: true });
    const asRoot = { app: 'api', upload: {}, user: 'root', allowRoot: true };
    assert.equal(codeOf(await run(ops, 'apps.deploy', asRoot, upload())), 'FORBIDDEN_ROLE');
    const noFlag = await run(admin, 'apps.deploy', { app: 'api', upload: {}, user: 'root' }, upload());
    assert.equal(codeOf(noFlag), 'ROOT_NOT_ALLOWED');
    assert.match(messageOf(noFlag), /--allow-root/);
  });

  it("capabilities are an admin's to give; a redeploy that keeps them needs only write", async () => {
    const ops = grant('operator', { exec: true });
    const op = grant('operator');
    const withCap = { app: 'api', upload: {}, capabilities: ['NET_BIND_SERVICE'] };
    assert.equal(codeOf(await run(ops, 'apps.deploy', withCap, upload())), 'FORBIDDEN_ROLE');
    const given = await run(admin, 'apps.deploy', withCap, upload());
    assert.equal(codeOf(given), 'ok', messageOf(given));
    assert.deepEqual(w.apps.get('api')?.capabilities, ['NET_BIND_SERVICE']);
    const again = await run(op, 'apps.deploy', { app: 'api', upload: {} }, upload());
    assert.equal(codeOf(again), 'ok', messageOf(again));
    assert.deepEqual(w.apps.get('api')?.capabilities, ['NET_BIND_SERVICE'], 'kept');
    // Taking them away is a change too.
    assert.equal(
      codeOf(await run(op, 'apps.deploy', { app: 'api', upload: {}, capabilities: [] }, upload())),
      'FORBIDDEN_ROLE',
    );
    assert.equal(
      codeOf(await run(op, 'apps.deploy', { app: 'api', upload: {}, capabilities: ['SYS_ADMIN'] }, upload())),
      'INVALID_ARGUMENT',
    );
  });
});
