/**
 * The dashboard (issue 17), on loopback: two agents, an app on n2, `plexus ui` against n1.
 *
 *   node bench/ui.ts [--rounds 5] [--changes 9]
 *
 * 1. Start to a rendered fleet page: from spawning `plexus ui` to Chromium showing both nodes
 *    in the table (a fresh `plexus ui` and page each round), median and spread over `--rounds`,
 *    with the CPU seconds `plexus ui` used to get there.
 * 2. JS shipped: app.js and app.css as served, raw and gzipped.
 * 3. App state change to the page: `plexus stop|start` of the app on n2 (through n2's control
 *    socket; the time includes that CLI's own start), until the page's status cell shows it; p50
 *    and spread over `--changes`. Baseline in the same run, on the same changes: what a page
 *    polling `telemetry.nodes` every 2 s (`plexus top`'s default) would see.
 * Needs Debian's chromium; the machine's load is printed, since figures on a busy machine mean less.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { PLEXUS, startCluster, waitFor } from '../test/helpers/cluster.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, changes: { type: 'string', default: '9' } },
});
const rounds = Number(values.rounds);
const changes = Number(values.changes);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const stats = (xs: number[]) => {
  const s = sorted(xs);
  return `median ${s[Math.floor(s.length / 2)].toFixed(0)} ms (min ${s[0].toFixed(0)}, max ${s[s.length - 1].toFixed(0)}, n=${s.length})`;
};
const cpuSeconds = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
};

console.log(
  `# load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} (figures from a busy machine mean less)`,
);
const cluster = await startCluster(2);
const [n1, n2] = cluster.nodes;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const app = join(cluster.root, 'ticker');
  mkdirSync(app);
  writeFileSync(join(app, 'plexus.yaml'), 'cmd: node ticker.cjs\nrestart: always\n');
  writeFileSync(join(app, 'ticker.cjs'), "setInterval(() => console.log('tick ' + Date.now()), 500);\n");
  const dep = await n2.run(['deploy', 'ticker', '--dir', app]);
  if (dep.code !== 0) throw new Error(dep.stderr);

  const startUi = async () => {
    const t0 = performance.now();
    const proc = spawn(PLEXUS, ['ui', '--data-dir', n1.dataDir, '--no-open', '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    const url = (await waitFor(
      async () => /plexus ui: (http\S+)/.exec(out)?.[1] ?? false,
      30_000,
      'the link',
      10,
    )) as string;
    return { proc, url, t0 };
  };

  console.log(`\n== plexus ui start to a rendered fleet page (2 nodes), ${rounds} rounds ==`);
  const starts: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const ui = await startUi();
    const page = await browser.newPage();
    await page.goto(ui.url);
    await page.waitForFunction(() => document.querySelectorAll('table.nodes tbody tr').length === 2, null, {
      timeout: 30_000,
    });
    starts.push(performance.now() - ui.t0);
    cpu.push(cpuSeconds(ui.proc.pid!));
    await page.close();
    ui.proc.kill('SIGTERM');
  }
  console.log(
    `${stats(starts)}; plexus ui CPU to get there: median ${sorted(cpu)[Math.floor(cpu.length / 2)].toFixed(2)} s`,
  );

  const ui = await startUi();
  const origin = new URL(ui.url).origin;
  const secret = new URL(ui.url).hash.replace('#s=', '');
  console.log('\n== JS and CSS shipped ==');
  for (const f of ['app.js', 'app.css']) {
    const body = Buffer.from(await (await fetch(`${origin}/${f}`)).arrayBuffer());
    console.log(`${f}: ${body.length} bytes, ${gzipSync(body, { level: 9 }).length} gzipped (gzip -9)`);
  }

  console.log(
    `\n== app state change on n2 to the page, ${changes} changes; baseline: a 2 s telemetry.nodes poll ==`,
  );
  const page = await browser.newPage();
  await page.goto(ui.url);
  await page.goto(`${origin}/#/apps`);
  const cell = page.locator('tr[data-app="n2/ticker"] td.status');
  await cell.waitFor({ timeout: 30_000 });
  const polled = new Map<string, number>();
  let pollStop = false;
  const poller = (async () => {
    while (!pollStop) {
      const r = await fetch(`${origin}/api/call`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-plexus-ui': secret },
        body: JSON.stringify({ action: 'telemetry.nodes' }),
      });
      const nodes = (
        (await r.json()) as {
          result: { name: string; telemetry: { apps: { name: string; status: string }[] } | null }[];
        }
      ).result;
      const status = nodes
        .find((n) => n.name === 'n2')
        ?.telemetry?.apps.find((a) => a.name === 'ticker')?.status;
      if (status && !polled.has(status)) polled.set(status, performance.now());
      await new Promise((res) => setTimeout(res, 2000));
    }
  })();
  const seen: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < changes; i++) {
    const want = i % 2 === 0 ? 'stopped' : 'running';
    polled.clear();
    const t0 = performance.now();
    const r = spawnSync(PLEXUS, [want === 'stopped' ? 'stop' : 'start', 'ticker', '--data-dir', n2.dataDir]);
    if (r.status !== 0) throw new Error(String(r.stderr));
    await page.waitForFunction(
      (w) => document.querySelector('tr[data-app="n2/ticker"] td.status')?.textContent === w,
      want,
      { polling: 'raf', timeout: 10_000 },
    );
    seen.push(performance.now() - t0);
    const at = (await waitFor(
      async () => polled.get(want) ?? false,
      10_000,
      'the poll to see it',
      20,
    )) as number;
    baseline.push(at - t0);
  }
  pollStop = true;
  await poller;
  console.log(`page (telemetry.watch): ${stats(seen)}`);
  console.log(`baseline (2 s poll):     ${stats(baseline)}`);
  ui.proc.kill('SIGTERM');
} finally {
  await browser.close();
  await cluster.stop();
}
