/**
 * Interactive sessions through the command service, as a target node runs them (issue 16): live
 * input frames each signed by the operator, checked in order, with real processes behind them.
 * The hostile cases: a frame injected by a relay (another key's signature), a replayed frame, an
 * oversized frame, an unknown frame type, a key without the shell grant, root for a non-admin, a
 * node without /dev/ptmx, a replayed envelope, and the per-node session limit. And what is kept of a
 * session: never the keys typed, whether recording is on or off.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { signCommand } from '../../src/commands/envelope.ts';
import { signInput } from '../../src/commands/live-input.ts';
import { ActionRegistry } from '../../src/core/actions.ts';
import type { Frame } from '../../src/core/frames.ts';
import { b64u, generateSigner, type Signer } from '../../src/crypto/ed25519.ts';
import { type GrantPayload, signGrant } from '../../src/mesh/operators.ts';
import { shellActions } from '../../src/shell/actions.ts';
import { shellMigrations } from '../../src/shell/migrations.ts';
import { SessionLog } from '../../src/shell/session-log.ts';
import type { SessionProcess } from '../../src/shell/session-process.ts';
import { openStore } from '../../src/store/index.ts';
import { commandNode } from '../helpers/commands.ts';

const admin = generateSigner().signer;
const root = mkdtempSync(join(tmpdir(), 'plexus-shell-int-'));
after(() => rmSync(root, { recursive: true, force: true }));

function setup(
  opts: {
    ptmx?: string;
    maxSessions?: number;
    idleTimeoutMs?: number;
    logger?: pino.Logger;
    record?: { dir: string; keep: number; maxBytes: number };
  } = {},
) {
  const actions = new ActionRegistry();
  const log = new SessionLog(openStore(':memory:', shellMigrations));
  actions.register(
    ...(shellActions({
      log,
      logger: opts.logger ?? pino({ level: 'silent' }),
      ...(opts.record ? { record: opts.record } : {}),
      policy: { defaultUser: 'plexus-shell', homeBase: join(root, 'home') },
      idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
      maxSessions: opts.maxSessions ?? 8,
      recordingsDir: opts.record?.dir ?? join(root, 'recordings'),
      live: new Set<SessionProcess>(),
      ptmx: opts.ptmx,
    }) as never[]),
  );
  const { membership, self, service } = commandNode({ admin, actions });
  const grant = (role: GrantPayload['role'], extra: Partial<GrantPayload> = {}): Signer => {
    const key = generateSigner().signer;
    membership.operators.accept(
      signGrant({ kid: key.kid, pubkey: b64u(key.publicKey), role, at: Date.now(), ...extra }, admin),
    );
    return key;
  };
  /**
   * Opens a session signed by `key`; `frames(id)` gives the raw input frames to send (a number
   * among them: wait that many ms before the next, as a person would).
   */
  async function open(
    key: Signer,
    args: Record<string, unknown>,
    frames: (id: string) => unknown[],
    envelope?: ReturnType<typeof signCommand>,
  ) {
    const signed =
      envelope ?? signCommand(key, { target: self, action: 'shell.open', args, input: { live: true } });
    const out: Frame[] = [];
    const input = (async function* () {
      for (const f of frames(signed.payload.id)) {
        if (typeof f === 'number') await new Promise((r) => setTimeout(r, f));
        else yield f;
      }
      // A live session's input stays open until the session ends.
      await new Promise((r) => setTimeout(r, 3_000));
    })();
    await service.handle(signed.envelope, input, async (f) => void out.push(f), {
      via: 'http',
      signal: new AbortController().signal,
    });
    const last = out.at(-1)!;
    const text = out
      .filter((f) => f.type === 'data' && typeof (f.data as { o?: string }).o === 'string')
      .map((f) => Buffer.from((f as { data: { o: string } }).data.o, 'base64').toString())
      .join('');
    return { out, last, text, signed, log };
  }
  return { grant, open, log };
}

const data = (s: string | Buffer) => ({ t: 'd', d: Buffer.from(s).toString('base64') });
const codeOf = (f: Frame) => (f.type === 'error' ? f.error.code : 'ok');
const asRoot = process.getuid?.() === 0;

describe('shell sessions through the command service', () => {
  it('streams signed stdin to a command and returns its exit status', async () => {
    const t = setup();
    const key = t.grant('operator', { shell: true });
    const r = await t.open(key, { mode: 'pipe', cmd: ['sh', '-c', 'cat; exit 5'] }, (id) => [
      signInput(key, id, 0, data('hello ')),
      signInput(key, id, 1, data('world')),
      signInput(key, id, 2, { t: 'e' }),
    ]);
    assert.equal(r.text, 'hello world');
    assert.equal(r.last.type, 'result');
    assert.equal((r.last as { result: { exitCode: number } }).result.exitCode, 5);
    const row = t.log.list()[0];
    assert.deepEqual(
      [row.mode, row.exitCode, row.reason, row.bytesIn, row.kid],
      ['pipe', 5, 'exit', 11, key.kid],
    );
  });

  it('kills the session when a relay injects a frame signed by another key', async () => {
    const t = setup();
    const key = t.grant('operator', { shell: true });
    const relay = generateSigner().signer;
    const r = await t.open(key, { mode: 'pipe', cmd: ['sh', '-c', 'cat; exit 0'] }, (id) => [
      signInput(key, id, 0, data('mine ')),
      signInput(relay, id, 1, data('rm -rf /')),
    ]);
    assert.equal(codeOf(r.last), 'INPUT_TAMPERED');
    assert.doesNotMatch(r.text, /rm -rf/);
    assert.equal(t.log.list()[0].reason, 'input-refused');
  });

  it('refuses a replayed, reordered or unsigned input frame', async () => {
    const t = setup();
    const key = t.grant('operator', { shell: true });
    const replay = await t.open(key, { mode: 'pipe', cmd: ['cat'] }, (id) => {
      const f = signInput(key, id, 0, data('once'));
      return [f, f];
    });
    assert.equal(codeOf(replay.last), 'INPUT_TAMPERED');
    const other = await t.open(key, { mode: 'pipe', cmd: ['cat'] }, () => [data('no signature')]);
    assert.equal(codeOf(other.last), 'INPUT_TAMPERED');
    // A frame signed for another session (command id) does not verify in this one.
    const moved = await t.open(key, { mode: 'pipe', cmd: ['cat'] }, () => [
      signInput(key, 'x'.repeat(22), 0, data('x')),
    ]);
    assert.equal(codeOf(moved.last), 'INPUT_TAMPERED');
  });

  it('refuses an oversized frame and an unknown frame type', async () => {
    const t = setup();
    const key = t.grant('operator', { shell: true });
    const big = await t.open(key, { mode: 'pipe', cmd: ['cat'] }, (id) => [
      signInput(key, id, 0, data(Buffer.alloc(300 * 1024))),
    ]);
    assert.equal(codeOf(big.last), 'SESSION_FRAME_TOO_LARGE');
    const odd = await t.open(key, { mode: 'pipe', cmd: ['cat'] }, (id) => [
      signInput(key, id, 0, { t: 'x' }),
    ]);
    assert.equal(codeOf(odd.last), 'BAD_SESSION_FRAME');
  });

  it('needs the shell grant, and root needs an admin', {
    skip: !asRoot && 'needs root to switch users',
  }, async () => {
    const t = setup();
    const execOnly = t.grant('operator', { exec: true });
    const none = await t.open(execOnly, { mode: 'pipe', cmd: ['true'] }, () => []);
    assert.equal(codeOf(none.last), 'FORBIDDEN_ROLE');
    const key = t.grant('operator', { shell: true });
    const rootAsked = await t.open(key, { mode: 'pipe', user: 'root', cmd: ['id', '-u'] }, (id) => [
      signInput(key, id, 0, { t: 'e' }),
    ]);
    assert.equal(codeOf(rootAsked.last), 'ROOT_DENIED');
    const byAdmin = await t.open(admin, { mode: 'pipe', user: 'root', cmd: ['id', '-u'] }, (id) => [
      signInput(admin, id, 0, { t: 'e' }),
    ]);
    assert.equal(byAdmin.text.trim(), '0');
    // Without --user, even an admin gets the shell user, not root.
    const byDefault = await t.open(admin, { mode: 'pipe', cmd: ['id', '-un'] }, (id) => [
      signInput(admin, id, 0, { t: 'e' }),
    ]);
    assert.equal(byDefault.text.trim(), 'plexus-shell');
  });

  it('says PTY_UNAVAILABLE on a node without /dev/ptmx, and pipes still work', async () => {
    const t = setup({ ptmx: join(root, 'no-ptmx') });
    const key = t.grant('operator', { shell: true });
    const r = await t.open(key, { mode: 'pty' }, () => []);
    assert.equal(codeOf(r.last), 'PTY_UNAVAILABLE');
  });

  it('accepts an envelope once', async () => {
    const t = setup();
    const key = t.grant('operator', { shell: true });
    const first = await t.open(key, { mode: 'pipe', cmd: ['true'] }, (id) => [
      signInput(key, id, 0, { t: 'e' }),
    ]);
    assert.equal(first.last.type, 'result');
    const again = await t.open(key, {}, () => [], first.signed);
    assert.equal(codeOf(again.last), 'REPLAY');
  });

  it('refuses a forged envelope (payload changed after signing)', async () => {
    const t = setup();
    const key = t.grant('operator', { shell: true });
    const signed = signCommand(key, { target: 'x', action: 'shell.open', args: {}, input: { live: true } });
    const other = signCommand(key, {
      target: 'x',
      action: 'shell.open',
      args: { user: 'root' },
      input: { live: true },
    });
    const forged = { ...signed, envelope: { ...signed.envelope, payload: other.envelope.payload } };
    const r = await t.open(key, {}, () => [], forged);
    assert.equal(codeOf(r.last), 'BAD_SIGNATURE');
  });

  it('hangs up a session idle past the timeout; keep-alives do not count as activity', async () => {
    const t = setup({ idleTimeoutMs: 400 });
    const key = t.grant('operator', { shell: true });
    const r = await t.open(key, { mode: 'pipe', cmd: ['sleep', '30'] }, (id) => [
      signInput(key, id, 0, { t: 'p' }),
    ]);
    assert.equal(r.last.type, 'result');
    assert.equal((r.last as { result: { reason: string } }).result.reason, 'idle');
    assert.equal(t.log.list()[0].reason, 'idle');
  });

  it('keeps no keystrokes: not in the logs or the audit, nor in a recording, on or off', async () => {
    const secret = 'hunter2-typed-not-shown';
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (l: string) => void lines.push(l) });
    const dir = join(root, 'recordings-keys');
    const files = () =>
      existsSync(dir) ? readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')) : [];
    const kept = () => [...lines, ...files()].join('\n');
    // Off: a program that reads the secret and never shows it.
    const off = setup({ logger });
    const key = off.grant('operator', { shell: true });
    const r = await off.open(key, { mode: 'pipe', cmd: ['sh', '-c', 'read -r x; echo read'] }, (id) => [
      signInput(key, id, 0, data(`${secret}\n`)),
      signInput(key, id, 1, { t: 'e' }),
    ]);
    assert.equal(r.text, 'read\n');
    assert.ok(lines.length > 0, 'the session was logged');
    assert.ok(!kept().includes(secret), 'recording off: the keys are nowhere');
    assert.ok(!JSON.stringify(off.log.list()).includes(secret), 'nor in the audit');
    // On: a password prompt (echo off), the secret typed once it shows: the recording has what
    // the terminal showed, and only that.
    const on = setup({ logger, record: { dir, keep: 10, maxBytes: 1 << 20 } });
    const key2 = on.grant('operator', { shell: true });
    const p = await on.open(
      key2,
      {
        mode: 'pty',
        cmd: ['sh', '-c', 'stty -echo; echo prompt; read -r x; echo read; printf %s "$x" | wc -c'],
      },
      (id) => [1000, signInput(key2, id, 0, data(`${secret}\r`))],
    );
    assert.match(p.text, new RegExp(`prompt\\s+read\\s+${secret.length}`));
    assert.equal(files().length, 1, 'one recording');
    const shown = files()[0]
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((l) => JSON.parse(l) as [number, string, string])
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');
    assert.match(shown, new RegExp(`prompt\\s+read\\s+${secret.length}`), 'the recording has the output');
    assert.ok(!kept().includes(secret), 'recording on: the keys typed are not in it');
  });

  it('holds to the per-node session limit', async () => {
    const t = setup({ maxSessions: 1 });
    const key = t.grant('operator', { shell: true });
    const holding = t.open(key, { mode: 'pipe', cmd: ['sleep', '1'] }, () => []);
    await new Promise((r) => setTimeout(r, 300));
    const second = await t.open(key, { mode: 'pipe', cmd: ['true'] }, () => []);
    assert.equal(codeOf(second.last), 'SESSION_LIMIT');
    assert.equal((await holding).last.type, 'result');
  });
});
