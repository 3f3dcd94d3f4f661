/**
 * The dashboard in a real Chromium (issue 17): a 3-node mesh where `natted` sits behind a NAT
 * gateway that lets it reach r1 only, so r2 reaches it through r1's circuit relay. `plexus ui`
 * runs on the public LAN against r2's API, and Chromium (Debian's package, driven by
 * playwright-core) runs there too. Through the page: log in (the link's secret) and see 3 nodes
 * with the r2–natted edge drawn relayed; deploy a bundle to natted and see it running; follow its
 * logs and see a line printed after the page opened; open a terminal on natted and run
 * `hostname`; as a viewer, see no deploy button and have a forged call refused with the node's
 * words. Screenshots go to test/artifacts/ui/ (git-ignored). Needs root, netns, iptables and
 * chromium (installed with apt-get when missing); skipped with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { PLEXUS, ROOT, waitFor } from '../helpers/cluster.ts';
import {
  createNatTopology,
  doorPort,
  type NatTopology,
  type NsNode,
  natUnavailable,
  nsNode,
} from '../helpers/netns.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test', 'artifacts', 'ui');

/** Why the browser tests cannot run here, or undefined (installs chromium when missing). */
function browserUnavailable(): string | undefined {
  const nat = natUnavailable();
  if (nat) return nat;
  if (spawnSync(CHROMIUM, ['--version']).status === 0) return undefined;
  spawnSync(
    'sh',
    [
      '-c',
      'flock /tmp/plexus-apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"',
    ],
    { stdio: 'ignore', timeout: 600_000 },
  );
  return spawnSync(CHROMIUM, ['--version']).status === 0
    ? undefined
    : "chromium is not installed and apt-get could not install it (Debian's chromium package)";
}

const skip = browserUnavailable();
if (skip) console.log(`# skipping the dashboard's browser tests: ${skip}`);

/** A `plexus ui` process inside a namespace, with the link it printed. */
interface UiProcess {
  proc: ChildProcess;
  url: string;
  startedAt: number;
}

describe('dashboard in Chromium: 3 nodes, one behind NAT', { skip }, () => {
  let topo: NatTopology;
  let root: string;
  let r1: NsNode;
  let r2: NsNode;
  let natted: NsNode;
  let browser: Browser;
  let admin: UiProcess;
  let page: Page;
  let pageOpenedAt = 0;
  const uis: UiProcess[] = [];
  const nodes: NsNode[] = [];

  /** Starts `plexus ui` in the public namespace, through r2's API, signing with `key`. */
  async function startUi(key: string): Promise<UiProcess> {
    const startedAt = Date.now();
    const proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        topo.pub,
        PLEXUS,
        '--api',
        `http://${r2.api}`,
        '--key',
        key,
        'ui',
        '--no-open',
        '--listen',
        '127.0.0.1:0',
        '--data-dir',
        join(root, 'ui-data'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d;
    });
    proc.stderr?.on('data', (d) => {
      out += d;
    });
    const url = (await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`plexus ui exited: ${out}`);
        return /plexus ui: (http\S+)/.exec(out)?.[1] ?? false;
      },
      20_000,
      'plexus ui to print its link',
      50,
    )) as string;
    const ui = { proc, url, startedAt };
    uis.push(ui);
    return ui;
  }

  /** In the open terminal page: waits for the session to connect, runs hostname, sees the answer. */
  async function typeHostname(page: Page, screenshot: string): Promise<void> {
    await page.locator('[role=status]', { hasText: 'connected to natted' }).waitFor({ timeout: 30_000 });
    await page.locator('.term-host').click();
    await page.keyboard.type('hostname\n');
    // A row that is exactly the node's host name: the answer, not the typed command's echo.
    await page.waitForFunction(
      (name) =>
        Array.from(document.querySelectorAll('.xterm-rows > div')).some(
          (r) => r.textContent?.trim() === name,
        ),
      hostname(),
      { timeout: 15_000 },
    );
    await shot(page, screenshot);
  }

  async function shot(p: Page, name: string): Promise<void> {
    const path = join(ARTIFACTS, `${name}.png`);
    await p.screenshot({ path, fullPage: true });
    console.log(`# screenshot: ${path}`);
  }

  before(async () => {
    topo = createNatTopology();
    root = mkdtempSync(join(tmpdir(), 'plexus-ui-'));
    chmodSync(root, 0o711);
    mkdirSync(ARTIFACTS, { recursive: true });
    r1 = await nsNode(topo.pub, root, 'r1', topo.pubIp, 7121, 7131);
    r2 = await nsNode(topo.pub, root, 'r2', topo.pubIp, 7122, 7132);
    natted = await nsNode(topo.nat, root, 'natted', topo.natIp, 7124, 7134);
    nodes.push(r1, r2, natted);
    await r1.setup(['init']);
    await r1.start();
    const tok = await r1.run(['token', 'create', '--ttl', '10m', '--uses', '2']);
    assert.equal(tok.code, 0, tok.stderr);
    await r2.setup(['join', tok.stdout.trim()]);
    // natted may reach r1 (mesh and door) and nothing else: r2 reaches it only through r1.
    topo.allowEgress([7121, doorPort(7121)]);
    await natted.setup(['join', tok.stdout.trim(), '--behind-nat']);
    await Promise.all([r2.start(), natted.start()]);
    const viewerKey = join(root, 'viewer.key');
    assert.equal((await r1.run(['operator', 'keygen', '--out', viewerKey, '--admin', r1.dataDir])).code, 0);
    const add = await r1.run(['operator', 'add', '--pub', `${viewerKey}.pub`, '--role', 'viewer']);
    assert.equal(add.code, 0, add.stderr);
    // natted must be reachable from r2 (over the relay) before the page can show it.
    await waitFor(
      async () =>
        (await r2.json<{ name: string; state: string }[]>(['peers'])).some(
          (p) => p.name === 'natted' && p.state === 'online',
        ),
      45_000,
      'r2 to see natted online',
      250,
    );
    const { chromium } = await import('playwright-core');
    // Chromium runs inside the public namespace, beside `plexus ui` (it listens on that loopback).
    const wrapper = join(root, 'chromium-in-netns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${topo.pub} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
    browser = await chromium.launch({ executablePath: wrapper, args: ['--no-sandbox'] });
    admin = await startUi(join(r1.dataDir, 'keys', 'admin.key'));
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    for (const ui of uis) ui.proc.kill('SIGTERM');
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo?.destroy();
    if (root) killProcessesUnder(root); // the deployed app outlives its SIGKILLed agent
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('logs in with the link and shows 3 nodes, the NAT’d edge drawn relayed', async () => {
    await page.goto(admin.url);
    pageOpenedAt = Date.now();
    await page.waitForFunction(() => document.querySelectorAll('table.nodes tbody tr').length === 3, null, {
      timeout: 30_000,
    });
    console.log(`# plexus ui start to a rendered fleet page (3 nodes): ${Date.now() - admin.startedAt} ms`);
    // The secret left the address bar and lives in this tab's sessionStorage.
    assert.ok(!page.url().includes('s='), page.url());
    assert.match((await page.locator('nav .me').textContent()) ?? '', /admin/);
    // Edges come from every node's own view; r2–natted can only be relayed.
    const edge = page.locator('g.edge[data-edge="natted--r2"]');
    await edge.waitFor({ timeout: 30_000 });
    assert.equal(await edge.getAttribute('data-kind'), 'relayed');
    assert.equal(await page.locator('g.edge[data-edge="natted--r1"]').getAttribute('data-kind'), 'direct');
    await shot(page, 'fleet');
  });

  it('deploys a bundle to the NAT’d node from the page and shows it running', async () => {
    const bundle = makeTickerBundle(root);
    await page.goto(`${new URL(admin.url).origin}/#/apps`);
    await page.selectOption('form.deploy select[name=node]', 'natted');
    await page.fill('form.deploy input[name=app]', 'ticker');
    await page.setInputFiles('form.deploy input[name=bundle]', bundle);
    await page.click('form.deploy button[name=deploy]');
    await page
      .locator('.notice-ok', { hasText: 'deploy ticker to natted: done' })
      .waitFor({ timeout: 60_000 });
    const status = page.locator('tr[data-app="natted/ticker"] td.status');
    await waitForText(status, 'running', 15_000);
    await shot(page, 'apps');
  });

  it('sets and unsets an env value of the app; the value never shows', async () => {
    await page.locator('tr[data-app="natted/ticker"] button', { hasText: 'releases & env' }).click();
    await page.fill('form.env-set input[name=env-name]', 'GREETING');
    await page.fill('form.env-set input[name=env-value]', 'not-for-the-page');
    await page.click('form.env-set button[name=env-set]');
    await page
      .locator('.notice-ok', { hasText: 'set GREETING on ticker: done' })
      .waitFor({ timeout: 20_000 });
    const row = page.locator('li[data-env="GREETING"]');
    await row.waitFor({ timeout: 10_000 });
    assert.doesNotMatch((await page.locator('main').textContent()) ?? '', /not-for-the-page/);
    const listed = await natted.json<unknown>(['env', 'ls', 'ticker']);
    assert.match(JSON.stringify(listed), /GREETING/);
    await row.locator('button', { hasText: 'unset' }).click();
    await page
      .locator('.notice-ok', { hasText: 'unset GREETING on ticker: done' })
      .waitFor({ timeout: 20_000 });
    await row.waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('follows the app’s logs and shows a line printed after the page opened', async () => {
    await page.locator('tr[data-app="natted/ticker"] button', { hasText: 'logs' }).click();
    const after = await page.waitForFunction(
      (since) => {
        const text = document.querySelector('pre.logs')?.textContent ?? '';
        const ticks = [...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
        return ticks.find((t) => t > since) ?? false;
      },
      pageOpenedAt,
      { timeout: 20_000 },
    );
    assert.ok(Number(await after.jsonValue()) > pageOpenedAt);
    await shot(page, 'logs');
  });

  it('shows an app’s state change within a second (the gossip’s delay)', async () => {
    const status = page.locator('tr[data-app="natted/ticker"] td.status');
    const t0 = Date.now();
    const stop = await natted.run(['stop', 'ticker']);
    assert.equal(stop.code, 0, stop.stderr);
    await waitForText(status, 'stopped', 10_000);
    console.log(
      `# app state change on natted to the page (one sample, stop included): ${Date.now() - t0} ms`,
    );
    assert.equal((await natted.run(['start', 'ticker'])).code, 0);
    await waitForText(status, 'running', 10_000);
  });

  it('opens a terminal on the NAT’d node and runs hostname', async () => {
    await page.goto(`${new URL(admin.url).origin}/#/terminal/natted`);
    await typeHostname(page, 'terminal');
  });

  it('charts a node from its history and lists its audit entries', async () => {
    await page.goto(`${new URL(admin.url).origin}/#/node/natted`);
    // Four node charts, and two of its apps' figures, kept by natted itself and asked there.
    const appsCpu = page.locator('.chart[data-chart="apps CPU %"]');
    await appsCpu.locator('.uplot').waitFor({ timeout: 15_000 });
    await waitForText(appsCpu, 'ticker', 5_000);
    assert.equal(await page.locator('.chart .uplot').count(), 6);
    // The deploy above was audited on natted, and an admin sees it.
    await waitForText(page.locator('table.audit'), 'apps.deploy', 15_000);
    await shot(page, 'node');
  });

  it('creates a join token with its install command, shows its uses, and revokes it', async () => {
    await page.goto(`${new URL(admin.url).origin}/#/keys`);
    await waitForText(page.locator('table.keys'), 'admin-key', 15_000);
    // Tokens are signed by the admin key, which r1 holds.
    await page.selectOption('section select', 'r1');
    await page.click('button[name=create-token]');
    const install = page.locator('code.install');
    await install.waitFor({ timeout: 15_000 });
    const text = (await install.textContent()) ?? '';
    const id = /token (\S+) created/.exec((await page.locator('p.notice-ok').textContent()) ?? '')?.[1];
    assert.match(text, /--token plx2\./);
    assert.ok(id);
    const row = page.locator(`tr[data-token="${id}"]`);
    await waitForText(row, '1 of 1', 10_000);
    await shot(page, 'keys');
    await row.locator('button', { hasText: 'revoke' }).click();
    await waitForText(row, 'revoked', 10_000);
  });

  it('an agent serves the same dashboard at /ui/, signing in the browser with an imported key', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const apage = await context.newPage();
    // Plain http to a LAN address is no secure context: no WebCrypto, and the page says so.
    await apage.goto(`http://${r2.api}/ui/`);
    await waitForText(apage.locator('[role=alert]'), 'secure context', 10_000);
    // Through a tunnel to loopback (what ssh -L gives), it is one.
    const tunnel = await loopbackTunnel(topo.pub, r2.api);
    after(() => tunnel.kill());
    const base = `http://127.0.0.1:${tunnel.port}`;
    await apage.goto(`${base}/ui/`);
    await apage.setInputFiles('input[name=key]', join(r1.dataDir, 'keys', 'admin.key'));
    await apage.waitForFunction(() => document.querySelectorAll('table.nodes tbody tr').length === 3, null, {
      timeout: 30_000,
    });
    await waitForText(apage.locator('nav .me'), 'admin', 10_000);
    await apage.locator('g.edge[data-edge="natted--r2"][data-kind="relayed"]').waitFor({ timeout: 30_000 });
    await shot(apage, 'agent-ui-fleet');
    // Kept in IndexedDB as a key that signs but cannot be read back, and still there after a reload.
    const stored = await apage.evaluate(
      () =>
        new Promise<{ extractable: boolean; exported: string }>((resolve) => {
          const open = indexedDB.open('plexus-ui', 1);
          open.onsuccess = () => {
            const get = open.result.transaction('keys').objectStore('keys').get('operator');
            get.onsuccess = () => {
              const key = get.result.key as CryptoKey;
              crypto.subtle.exportKey('jwk', key).then(
                () => resolve({ extractable: key.extractable, exported: 'yes' }),
                (e) => resolve({ extractable: key.extractable, exported: String(e.name) }),
              );
            };
          };
        }),
    );
    assert.deepEqual(stored, { extractable: false, exported: 'InvalidAccessError' });
    // A new tab of the same browser profile finds the key again (IndexedDB), with no import.
    await apage.close();
    const tab = await context.newPage();
    await tab.goto(`${base}/ui/#/apps`);
    const row = tab.locator('tr[data-app="natted/ticker"]');
    await row.waitFor({ timeout: 30_000 }).catch(async (e) => {
      await shot(tab, 'agent-ui-failed');
      throw e;
    });
    await row.locator('button', { hasText: 'restart' }).click();
    // Done, never the REPLAY of a copy Chromium resent (the API closes a browser's connections
    // after each answer, so none is reused and resent on; docs/ui.md).
    const notice = tab.locator('p.notice', { hasText: /restart ticker: (done|.*REPLAY)/ });
    await notice.waitFor({ timeout: 30_000 }).catch(async (e) => {
      await shot(tab, 'agent-ui-failed');
      throw e;
    });
    assert.match((await notice.textContent()) ?? '', /restart ticker: done/);
    await shot(tab, 'agent-ui-apps');
    // A terminal too, signed key by key in the page, to the NAT'd node through r2.
    await tab.goto(`${base}/ui/#/terminal/natted`);
    await typeHostname(tab, 'agent-ui-terminal');
    await context.close();
  });

  it('as a viewer: no deploy or action buttons, and a forged call is refused with the node’s words', async () => {
    const viewer = await startUi(join(root, 'viewer.key'));
    const vpage = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await vpage.goto(viewer.url);
    await waitForText(vpage.locator('nav .me'), 'viewer', 20_000);
    await vpage.goto(`${new URL(viewer.url).origin}/#/apps`);
    await vpage.locator('tr[data-app="natted/ticker"]').waitFor({ timeout: 20_000 });
    assert.equal(await vpage.locator('form.deploy').count(), 0);
    assert.equal(
      await vpage.locator('tr[data-app="natted/ticker"] button', { hasText: 'restart' }).count(),
      0,
    );
    await vpage.locator('tr[data-app="natted/ticker"] button', { hasText: 'releases & env' }).click();
    await vpage.locator('h3', { hasText: 'Env' }).waitFor({ timeout: 10_000 });
    assert.equal(await vpage.locator('form.env-set').count(), 0);
    await shot(vpage, 'apps-viewer');
    // The click the page did not offer, made anyway: the local server signs it with the viewer's
    // key and the node refuses it.
    const answer = await vpage.evaluate(async () => {
      const res = await fetch('/api/call', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-plexus-ui': sessionStorage.getItem('plexus-ui-secret') ?? '',
        },
        body: JSON.stringify({ node: 'natted', action: 'apps.restart', args: { app: 'ticker' } }),
      });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(answer.status, 403, JSON.stringify(answer));
    assert.equal(answer.body.error.code, 'FORBIDDEN_ROLE');
    assert.ok(answer.body.error.message.length > 0);
    await vpage.goto(`${new URL(viewer.url).origin}/#/terminal`);
    await waitForText(vpage.locator('main'), 'may not open sessions', 10_000);
    await vpage.close();
  });
});

/**
 * A TCP forward from 127.0.0.1 in `ns` to `target` (HOST:PORT), as `ssh -L` would give: a small
 * node:net proxy in its own process. Resolves with the port it listens on.
 */
async function loopbackTunnel(ns: string, target: string): Promise<{ port: number; kill(): void }> {
  const [host, port] = target.split(':');
  const code = `const net=require('node:net');const s=net.createServer((c)=>{const u=net.connect(${port},'${host}');c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());});s.listen(0,'127.0.0.1',()=>console.log(s.address().port));`;
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  const bound = (await waitFor(
    async () => Number(out.trim()) || false,
    10_000,
    'the tunnel to listen',
    20,
  )) as number;
  return { port: bound, kill: () => proc.kill() };
}

/** Waits until `loc`'s text contains `text`. */
async function waitForText(
  loc: import('playwright-core').Locator,
  text: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = (await loc.textContent().catch(() => '')) ?? '';
    if (now.includes(text)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for '${text}' (last: '${now}')`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A bundle (.tar.gz) of an app that prints `tick <ms>` twice a second (no port: health is staying up). */
function makeTickerBundle(root: string): string {
  const dir = join(root, 'ticker');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'plexus.yaml'), 'cmd: node ticker.cjs\nrestart: always\n');
  writeFileSync(join(dir, 'ticker.cjs'), "setInterval(() => console.log('tick ' + Date.now()), 500);\n");
  const out = join(root, 'ticker.tar.gz');
  const r = spawnSync('tar', ['czf', out, '-C', dir, '.']);
  assert.equal(r.status, 0, String(r.stderr));
  chmodSync(out, 0o644);
  return out;
}
