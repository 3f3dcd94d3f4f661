/**
 * Interactive sessions (issue 16), used as a person would: `plexus shell` in a tmux window, from
 * the entry node's side of the network to a node behind NAT (reachable only through a circuit
 * relay on a third node): keys and output, a window resize, Ctrl-C, the exit status, and the
 * session's audit row and recording. Then `exec -i` streaming a tar archive, a key without the
 * shell grant refused and audited, and an unknown node. Needs root, iproute2, iptables and tmux
 * (installed with apt-get when missing); skipped with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PLEXUS, waitFor } from '../helpers/cluster.ts';
import {
  createNatTopology,
  doorPort,
  type NatTopology,
  type NsNode,
  natUnavailable,
  nsNode,
} from '../helpers/netns.ts';

function tmuxUnavailable(): string | undefined {
  if (spawnSync('tmux', ['-V']).status === 0) return undefined;
  spawnSync('apt-get', ['install', '-y', 'tmux'], { stdio: 'ignore' });
  return spawnSync('tmux', ['-V']).status === 0
    ? undefined
    : 'tmux is missing and apt-get could not install it';
}

const skip = natUnavailable() ?? tmuxUnavailable();
if (skip) console.log(`# skipping shell tests: ${skip}`);

describe('plexus shell to a NAT’d node through another node', { skip }, () => {
  let topo: NatTopology;
  let root: string;
  let relay: NsNode;
  let entry: NsNode;
  let natted: NsNode;
  let opKey: string;
  let plainKey: string;
  const nodes: NsNode[] = [];
  const tmuxSocket = `plexus-shell-test-${process.pid}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', tmuxSocket, ...args], { encoding: 'utf8' });
  const screen = () => tmux('capture-pane', '-p', '-t', 'op');
  const waitScreen = (re: RegExp, what: string) => waitFor(async () => re.test(screen()), 20_000, what, 100);
  /** A CLI command line run from the entry node's namespace through its API. */
  const cliLine = (key: string, args: string) =>
    `ip netns exec ${entry.ns} ${PLEXUS} --data-dir ${entry.dataDir} --api http://${entry.api} --key ${key} ${args}`;

  before(async () => {
    topo = createNatTopology();
    root = mkdtempSync(join(tmpdir(), 'plexus-shell-'));
    relay = await nsNode(topo.pub, root, 'relay', topo.pubIp, 7201, 7211);
    entry = await nsNode(topo.pub, root, 'entry', topo.pubIp, 7202, 7212);
    natted = await nsNode(topo.nat, root, 'natted', topo.natIp, 7203, 7213);
    nodes.push(relay, entry, natted);
    await relay.setup(['init']);
    await relay.start();
    const tok = await relay.run(['token', 'create', '--ttl', '10m', '--uses', '2']);
    assert.equal(tok.code, 0, tok.stderr);
    // A SOCKS proxy on the entry: cp's bytes take its tunnels (the fast path), not the command stream.
    await entry.setup(['join', tok.stdout.trim()], '127.0.0.1:7222');
    await entry.start();
    topo.allowEgress([7201, doorPort(7201)]);
    await natted.setup(['join', tok.stdout.trim(), '--behind-nat']);
    await natted.start({ PLEXUS_SHELL__RECORD: 'true' });
    opKey = join(root, 'op.key');
    plainKey = join(root, 'plain.key');
    for (const [key, extra] of [
      [opKey, ['--shell']],
      [plainKey, ['--exec']],
    ] as const) {
      assert.equal((await relay.run(['operator', 'keygen', '--out', key])).code, 0);
      const add = await relay.run(['operator', 'add', '--pub', `${key}.pub`, '--role', 'operator', ...extra]);
      assert.equal(add.code, 0, add.stderr);
    }
    // The grants reach the NAT'd node by gossip; a session through the entry proves the path.
    let last = '';
    await waitFor(
      async () => {
        const r = await entry.run([
          '--api',
          `http://${entry.api}`,
          '--key',
          opKey,
          'exec',
          '-i',
          'natted',
          '--',
          'true',
        ]);
        last = r.stderr;
        return r.code === 0;
      },
      60_000,
      'a session on natted through the entry API',
      500,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}: ${last}`);
    });
  });

  after(async () => {
    spawnSync('tmux', ['-L', tmuxSocket, 'kill-server']);
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('types, resizes, interrupts and exits with the shell’s status', async () => {
    const status = join(root, 'status');
    tmux(
      'new-session',
      '-d',
      '-s',
      'op',
      '-x',
      '100',
      '-y',
      '30',
      `${cliLine(opKey, 'shell natted')}; echo $? > ${status}; stty -a > ${status}.stty; sleep 600`,
    );
    await waitScreen(/\$\s*$/m, 'a prompt');
    tmux('send-keys', '-t', 'op', 'echo $((6*7))', 'Enter');
    await waitScreen(/^42$/m, '42');
    tmux('send-keys', '-t', 'op', 'stty size', 'Enter');
    await waitScreen(/^30 100$/m, 'stty size 30 100');
    tmux('resize-window', '-t', 'op', '-x', '120', '-y', '40');
    tmux('send-keys', '-t', 'op', 'clear; stty size', 'Enter');
    await waitScreen(/^40 120$/m, 'stty size 40 120 after the resize');
    tmux('send-keys', '-t', 'op', 'sleep 300; echo not-interrupted', 'Enter');
    await new Promise((r) => setTimeout(r, 500));
    tmux('send-keys', '-t', 'op', 'C-c');
    tmux('send-keys', '-t', 'op', 'echo after-ctrl-c-$((1+1))', 'Enter');
    await waitScreen(/^after-ctrl-c-2$/m, 'the shell back after Ctrl-C');
    assert.doesNotMatch(screen(), /^not-interrupted$/m);
    tmux('send-keys', '-t', 'op', 'exit 3', 'Enter');
    await waitFor(
      async () => readFileSync(status, 'utf8').trim() === '3',
      20_000,
      'exit status 3',
      200,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; screen:\n${screen()}`);
    });
    // Raw mode is off again: the local terminal echoes and handles lines.
    const stty = readFileSync(`${status}.stty`, 'utf8');
    assert.match(stty, /(^|\s)icanon(\s|$)/);
    assert.match(stty, /(^|\s)echo(\s|$)/);
  });

  it('restores the local terminal when the CLI is killed mid-session', async () => {
    const status = join(root, 'status-killed');
    tmux(
      'new-window',
      '-t',
      'op',
      '-n',
      'killed',
      `${cliLine(opKey, 'shell natted')}; echo $? > ${status}; stty -a > ${status}.stty; sleep 600`,
    );
    await waitFor(
      async () => /\$\s*$/m.test(tmux('capture-pane', '-p', '-t', 'op:killed')),
      20_000,
      'a prompt',
      100,
    );
    // The pane runs `sh -c '…'`, whose child is the CLI (ip netns exec replaces itself with it).
    const pane = tmux('display', '-p', '-t', 'op:killed', '#{pane_pid}').trim();
    const cli = execFileSync('pgrep', ['-P', pane], { encoding: 'utf8' }).trim().split('\n')[0];
    process.kill(Number(cli), 'SIGTERM');
    await waitFor(
      async () => existsSync(`${status}.stty`) && readFileSync(`${status}.stty`, 'utf8').length > 0,
      20_000,
      'the CLI to exit',
      100,
    );
    assert.equal(readFileSync(status, 'utf8').trim(), '143');
    const stty = readFileSync(`${status}.stty`, 'utf8');
    assert.match(stty, /(^|\s)icanon(\s|$)/);
    assert.match(stty, /(^|\s)echo(\s|$)/);
    // The node's agent outlives a client that vanished mid-session: the session's output, with
    // nowhere to go, once rejected unhandled and took the whole agent down.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(natted.proc?.exitCode, null, natted.output().slice(-2000));
    assert.equal((await natted.run(['status'])).code, 0);
  });

  it('audits the session on the node and replays its recording', async () => {
    const sessions = await natted.json<
      {
        id: string;
        user: string;
        mode: string;
        exitCode: number;
        reason: string;
        bytesIn: number;
        bytesOut: number;
        recorded: boolean;
      }[]
    >(['audit', 'sessions']);
    const s = sessions.find((x) => x.mode === 'pty' && x.exitCode === 3);
    assert.ok(s, JSON.stringify(sessions));
    assert.equal(s.user, 'plexus-shell');
    assert.equal(s.exitCode, 3);
    assert.equal(s.reason, 'exit');
    assert.ok(s.bytesIn > 10 && s.bytesOut > 10, JSON.stringify(s));
    assert.equal(s.recorded, true);
    // `--` first: 1 in 64 session ids starts with '-'.
    const play = await natted.run(['audit', 'play', '--speed', '100', '--', s.id]);
    assert.equal(play.code, 0, play.stderr);
    assert.match(play.stdout, /42/);
  });

  it('streams stdin without a terminal: tar through exec -i, with EOF', async () => {
    const src = join(root, 'tree');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'big.bin'), randomBytes(8 * 1024 * 1024));
    writeFileSync(join(src, 'sub', 'small.txt'), 'hello\n', { mode: 0o640 });
    const sum = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    const r = spawnSync(
      'bash',
      [
        '-c',
        `set -o pipefail; tar c -C ${src} . | ${cliLine(opKey, 'exec -i natted -- sh -c "mkdir -p /tmp/in && tar x -C /tmp/in && sha256sum /tmp/in/big.bin && stat -c %a /tmp/in/sub/small.txt"')}`,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${sum(join(src, 'big.bin'))}  /tmp/in/big.bin$`, 'm'));
    assert.match(r.stdout, /^640$/m);
    const code = spawnSync('bash', [
      '-c',
      `${cliLine(opKey, 'exec -i natted -- sh -c "cat >/dev/null; exit 7"')} < /dev/null`,
    ]);
    assert.equal(code.status, 7);
  });

  it('refuses a key without the shell grant, and audits the refusal', async () => {
    const r = spawnSync('bash', ['-c', `${cliLine(plainKey, 'shell natted')} < /dev/null`], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^plexus: .*shell/m);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    const audit = await natted.json<{ action: string; verdict: string; code: string }[]>(['audit']);
    assert.ok(
      audit.some((a) => a.action === 'shell.open' && a.verdict === 'refused' && a.code === 'FORBIDDEN_ROLE'),
      JSON.stringify(audit.slice(0, 5)),
    );
  });

  it('copies a 50 MB file and a tree to the node and back, and resumes an interrupted copy', async () => {
    const sum = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    const src = join(root, 'cp-src');
    mkdirSync(join(src, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(src, 'big.bin'), randomBytes(50 * 1024 * 1024));
    writeFileSync(join(src, 'sub', 'script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o750 });
    writeFileSync(join(src, 'sub', 'deeper', 'secret'), 'x', { mode: 0o600 });
    // The node writes as its shell user: give it a folder it owns.
    const dst = join(root, 'cp-dst');
    mkdirSync(dst);
    chmodSync(root, 0o711);
    execFileSync('chown', ['plexus-shell', dst]);
    const cp = (args: string, key = opKey) =>
      spawnSync('bash', ['-c', `${cliLine(key, `cp ${args}`)} < /dev/null`], {
        encoding: 'utf8',
        timeout: 300_000,
      });
    let r = cp(`${join(src, 'big.bin')} natted:${dst}/big.bin`);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /command stream/, 'the binary fast path through the local SOCKS proxy');
    assert.equal(sum(join(dst, 'big.bin')), sum(join(src, 'big.bin')));
    // Without a local proxy: the signed command stream, said once, same result.
    r = spawnSync(
      'bash',
      [
        '-c',
        `PLEXUS_SOCKS__LISTEN=127.0.0.1:1 ${cliLine(opKey, `cp ${join(src, 'sub', 'script.sh')} natted:${dst}/slow.sh`)} < /dev/null`,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /^plexus: no local agent's SOCKS5 proxy .* copying over the command stream instead/,
    );
    assert.equal(sum(join(dst, 'slow.sh')), sum(join(src, 'sub', 'script.sh')));
    r = cp(`-r ${src} natted:${dst}/tree`);
    assert.equal(r.status, 0, r.stderr);
    const back = join(root, 'cp-back');
    r = cp(`-r natted:${dst}/tree ${back}`);
    assert.equal(r.status, 0, r.stderr);
    for (const rel of ['big.bin', 'sub/script.sh', 'sub/deeper/secret']) {
      assert.equal(sum(join(back, rel)), sum(join(src, rel)), rel);
      assert.equal(statSync(join(back, rel)).mode & 0o777, statSync(join(src, rel)).mode & 0o777, rel);
      assert.equal(
        Math.floor(statSync(join(back, rel)).mtimeMs / 1000),
        Math.floor(statSync(join(src, rel)).mtimeMs / 1000),
        rel,
      );
    }
    // Interrupted: killed once part of the file is on the node; only the temporary name exists.
    const part = join(dst, '.again.bin.plexus-part');
    const child = spawn('bash', [
      '-c',
      `exec ${cliLine(opKey, `cp ${join(src, 'big.bin')} natted:${dst}/again.bin`)} < /dev/null`,
    ]);
    await waitFor(
      async () => existsSync(part) && statSync(part).size > 4 * 1024 * 1024,
      120_000,
      'a partial copy',
      20,
    );
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
    assert.equal(existsSync(join(dst, 'again.bin')), false, 'no half-written destination');
    r = cp(`--resume ${join(src, 'big.bin')} natted:${dst}/again.bin`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resuming .* at byte [1-9]/);
    assert.equal(sum(join(dst, 'again.bin')), sum(join(src, 'big.bin')));
    assert.equal(existsSync(part), false);
  });

  it('refuses a path the shell user may not read, and a full disk, in one line', () => {
    const one = (r: ReturnType<typeof spawnSync>) => String(r.stderr).trim().split('\n').length === 1;
    let r = spawnSync(
      'bash',
      ['-c', `${cliLine(opKey, `cp natted:/etc/shadow ${root}/shadow`)} < /dev/null`],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /permission denied/);
    assert.ok(one(r), r.stderr);
    assert.equal(existsSync(join(root, 'shadow')), false);
    // A 1 MiB file system, mounted where the NAT'd agent sees it (its own mount namespace).
    const full = join(root, 'full');
    mkdirSync(full);
    const inAgent = (...argv: string[]) =>
      spawnSync('nsenter', ['-t', String(natted.proc!.pid), '-m', ...argv]);
    assert.equal(inAgent('mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0777', 'tmpfs', full).status, 0);
    try {
      writeFileSync(join(root, 'two-mb'), randomBytes(2 * 1024 * 1024));
      r = spawnSync(
        'bash',
        ['-c', `${cliLine(opKey, `cp ${root}/two-mb natted:${full}/two-mb`)} < /dev/null`],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 1);
      assert.match(r.stderr, /no space left/);
      assert.ok(one(r), r.stderr);
      assert.notEqual(inAgent('test', '-e', join(full, 'two-mb')).status, 0, 'no half-written destination');
    } finally {
      inAgent('umount', full);
    }
  });

  it('names an unknown node in one line', () => {
    const r = spawnSync('bash', ['-c', `${cliLine(opKey, 'shell no-such-node')} < /dev/null`], {
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no-such-node/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});
