/**
 * Install and upgrade figures of issue 15, in a real systemd (a Debian rootfs booted with
 * systemd-nspawn, as test/e2e/install.test.ts does):
 *   - install: `install.sh --init` from an unpacked tarball until the service answers;
 *   - agent downtime of `plexus upgrade` (9.0.0 -> 9.0.1) and `upgrade --rollback`, as the CLI
 *     reports it, against a plain `systemctl restart plexus` in the same run (the baseline);
 *   - an app's port during each (a request every 20 ms): failed requests and the longest gap;
 *   - CPU seconds: the command's own (and its children's), and the new agent's at its first answer.
 * Each run starts from nothing (`uninstall --purge --yes`). Prints median and spread (min–max).
 *
 *   node bench/install.ts [--runs 5]
 *
 * Needs root, systemd-nspawn and debootstrap (as the e2e test); the rootfs is cached.
 */
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bootContainer, inBox, nspawnUnavailableReason } from '../test/helpers/nspawn.ts';
import { buildTestReleases } from '../test/helpers/releases.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(values.runs);
const skip = await nspawnUnavailableReason();
if (skip) {
  console.error(`bench/install: ${skip}`);
  process.exit(1);
}
const rel = buildTestReleases();
const box = await bootContainer({ binds: [rel.root] });
const PLEXUS = '/usr/local/bin/plexus';
const NODE = 'ls -d /opt/plexus/current/.tools/node-*/bin/node';
const sh = async (script: string, timeoutMs = 300_000) => {
  const r = await box.exec(['sh', '-c', script], { timeoutMs });
  if (r.code !== 0) throw new Error(`${script.slice(0, 80)}: exit ${r.code}: ${r.stderr.slice(-400)}`);
  return r.stdout;
};
/** Runs `script`, returning its output and the CPU seconds it and its children used. */
const timed = async (script: string) => {
  const out = await sh(`${script}; echo; echo "cpu $(cut -d' ' -f16,17 /proc/$$/stat)"`);
  const [u, s] = /cpu (\d+) (\d+)\s*$/.exec(out)!.slice(1).map(Number);
  return { out, cpuS: (u + s) / 100 };
};
/** The running agent's CPU seconds so far (it answered: its start-up is in there). */
const agentCpu = async () => {
  const pid = (await sh('systemctl show -p MainPID --value plexus')).trim();
  const [u, s] = (await sh(`cut -d' ' -f14,15 /proc/${pid}/stat`)).trim().split(' ').map(Number);
  return (u + s) / 100;
};

// The app, and a request loop run with the release's Node (the box has none of its own).
cpSync(join(import.meta.dirname, '..', 'examples', 'hello'), join(rel.root, 'hello'), { recursive: true });
writeFileSync(
  join(rel.root, 'loop.cjs'),
  `(async () => {
    const t0 = Date.now(); let ok = 0, failed = 0, last = Date.now(), gap = 0;
    for (let i = 0; i < 6000 && Date.now() - t0 < 120000; i++) {
      try { const r = await fetch('http://127.0.0.1:18080/'); await r.text(); if (r.ok) { ok++; gap = Math.max(gap, Date.now() - last); last = Date.now(); } else failed++; }
      catch { failed++; }
      if (require('fs').existsSync('/root/loop.stop')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    console.log(JSON.stringify({ ok, failed, gap }));
  })();`,
);
/** Runs `script` while the loop requests the app; returns both. */
const underLoad = async (script: string) => {
  await sh('rm -f /root/loop.stop');
  const loop = sh(`$(${NODE}) ${inBox(rel.root)}/loop.cjs`);
  await new Promise((r) => setTimeout(r, 300));
  const r = await timed(script);
  await sh('touch /root/loop.stop');
  return {
    ...r,
    app: JSON.parse((await loop).trim().split('\n').pop()!) as { ok: number; failed: number; gap: number },
  };
};
const downtime = (out: string) => Number(/agent down ([\d.]+) s/.exec(out)?.[1] ?? Number.NaN);

const rows: Record<string, number[]> = {};
const add = (k: string, v: number) => {
  rows[k] ??= [];
  rows[k].push(v);
};
try {
  await sh(`tar xzf ${inBox(rel.a.tarball)} -C /root`);
  for (let run = 0; run < RUNS; run++) {
    if (run > 0) await sh(`${PLEXUS} uninstall --purge --yes`);
    const t0 = Date.now();
    const install = await timed(`/root/plexus-9.0.0/install.sh --init box${run} >/dev/null`);
    add('install: tarball -> answering (s)', (Date.now() - t0) / 1000);
    add('install: CPU of install.sh (s)', install.cpuS);
    add('install: CPU of the new agent at first answer (s)', await agentCpu());
    await sh(`mkdir -p /root/app && cp ${inBox(rel.root)}/hello/* /root/app/`);
    await sh(
      `${PLEXUS} deploy hello --dir /root/app --cmd "$(${NODE}) server.js" --port 18080 --health http://:18080/health >/dev/null`,
    );

    // Baseline: a plain restart, timed from the call until the agent answers again.
    const restart = await underLoad(
      `s=$(date +%s%N); systemctl restart plexus; until ${PLEXUS} status >/dev/null 2>&1; do sleep 0.05; done; echo "agent down $(( ($(date +%s%N) - s) / 1000000 ))e-3 s"`,
    );
    add('restart (baseline): agent down (s)', Number(/agent down (\d+)e-3 s/.exec(restart.out)![1]) / 1000);
    add('restart (baseline): app failed requests', restart.app.failed);
    add('restart (baseline): app longest gap (ms)', restart.app.gap);

    const up = await underLoad(`${PLEXUS} upgrade --file ${inBox(rel.b.tarball)}`);
    add('upgrade: agent down (s)', downtime(up.out));
    add('upgrade: CPU of plexus upgrade (s)', up.cpuS);
    add('upgrade: app failed requests', up.app.failed);
    add('upgrade: app longest gap (ms)', up.app.gap);

    const back = await underLoad(`${PLEXUS} upgrade --rollback`);
    add('rollback: agent down (s)', downtime(back.out));
    add('rollback: app failed requests', back.app.failed);
    process.stderr.write(`run ${run + 1}/${RUNS} done\n`);
  }
} finally {
  await box.stop();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));
console.log(`bench/install: ${RUNS} runs in a booted Debian rootfs (systemd-nspawn); median (min–max)`);
for (const [k, xs] of Object.entries(rows))
  console.log(`  ${k.padEnd(52)} ${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`);
