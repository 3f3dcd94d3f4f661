/**
 * What each dependency patch under patches/ buys, measured against the unpatched code in the same
 * run (patches/README.md: a patch is kept only while this bench prints a benefit).
 *
 *   node bench/patches.ts [--runs 5] [--mb 200] [--messages 1000]
 *
 * The baseline is the installed package with its patch reversed (`patch -R`) into a copy under
 * .tools/, so that its own imports still resolve from node_modules. Each figure is the median of
 * `--runs` with the spread (min-max); xsalsa20, the sort and prom-client run each measurement
 * in a fresh child process (WebAssembly memory, ICU data and loaded modules are per process).
 *
 * 1. @chainsafe/libp2p-yamux: window-update frames a stream sends back while it receives
 *    `--messages` small messages (300 B, a gossiped telemetry record's size).
 * 2. xsalsa20: `--mb` MB through two instances in turn (pnet's two directions of a connection,
 *    writes of 64 KiB to 4 MiB): whether it throws, the shared WebAssembly memory at the end,
 *    wall and CPU seconds.
 * 3. @libp2p/peer-store, @libp2p/peer-record: RSS added by the first sort of multiaddrs (peer
 *    records compare address lists this way); `localeCompare` loads ICU's collation.
 * 4. prom-client: RSS added by `require('prom-client')`, and whether it loaded TLS (its index
 *    required the Pushgateway, and so node:https, at once).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(import.meta.dirname, '..');
const PATCHES = join(ROOT, 'patches');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    mb: { type: 'string', default: '200' },
    messages: { type: 'string', default: '1000' },
    child: { type: 'string' },
    dir: { type: 'string' },
  },
});

/**
 * The sizes pnet encrypts in turn: a TCP read of 64 KiB, and the larger writes of several yamux
 * frames at once; each instance (direction) sees each size.
 */
const WRITES = [64 << 10, 256 << 10, 1 << 20, 4 << 20];
/** A gossiped telemetry record's size on the wire, about. */
const MESSAGE_BYTES = 300;
/** yamux's default initial stream window. */
const WINDOW = 256 * 1024;

// ---- children: one measurement each, one JSON line on stdout ----

/** 2: bytes through two instances of the xsalsa20 in `dir`, in turn. */
function xsalsa20Child(dir: string, mb: number): object {
  // CommonJS, loaded from `dir` itself (the installed package or the unpatched copy).
  const XSalsa20 = createRequire(import.meta.url)(dir) as (
    n: Uint8Array,
    k: Uint8Array,
  ) => { update(b: Uint8Array): Uint8Array; _xor: { _memory: Uint8Array } };
  const key = new Uint8Array(32);
  const [a, b] = [XSalsa20(new Uint8Array(24).fill(1), key), XSalsa20(new Uint8Array(24).fill(2), key)];
  const total = mb * 1e6;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let done = 0;
  let error: string | undefined;
  try {
    for (let i = 0; done < total; i++) {
      const input = new Uint8Array(WRITES[(i >> 1) % WRITES.length]);
      (i % 2 ? a : b).update(input);
      done += input.length;
    }
  } catch (err) {
    error = (err as Error).message;
  }
  const cpu = process.cpuUsage(c0);
  // A new instance takes a view of the memory as it is now.
  const memoryMiB = XSalsa20(new Uint8Array(24), key)._xor._memory.byteLength / 2 ** 20;
  return {
    mb: done / 1e6,
    error,
    memoryMiB,
    wallS: (performance.now() - t0) / 1000,
    cpuS: (cpu.user + cpu.system) / 1e6,
  };
}

/** 3: RSS added by the first sort through peer-record's `arrayEquals` in `file`. */
async function sortChild(file: string): Promise<object> {
  const { arrayEquals } = (await import(pathToFileURL(file).href)) as {
    arrayEquals(a: unknown[], b: unknown[]): boolean;
  };
  const addr = (s: string) => ({ toString: () => s, equals: (o: { toString(): string }) => `${o}` === s });
  const xs = ['/ip4/10.0.0.2/tcp/4001', '/ip4/127.0.0.1/tcp/4001', '/ip6/::1/tcp/4001'];
  const [a, b] = [xs.map(addr), [...xs].reverse().map(addr)];
  // The same work without the sort first, so that the figure is the sort's own.
  b.every((x, i) => x.equals(a[i]));
  performance.now();
  const rss0 = process.memoryUsage.rss();
  const t0 = performance.now();
  const equal = arrayEquals(a, b);
  return { equal, rssMiB: (process.memoryUsage.rss() - rss0) / 2 ** 20, ms: performance.now() - t0 };
}

/** 4: RSS added by loading the prom-client in `dir`, and whether that loaded TLS. */
function promClientChild(dir: string): object {
  const rss0 = process.memoryUsage.rss();
  createRequire(import.meta.url)(dir);
  const tls = (process as unknown as { moduleLoadList: string[] }).moduleLoadList.includes(
    'NativeModule tls',
  );
  return { rssMiB: (process.memoryUsage.rss() - rss0) / 2 ** 20, tls };
}

if (values.child) {
  const dir = values.dir ?? '';
  const out =
    values.child === 'xsalsa20'
      ? xsalsa20Child(dir, Number(values.mb))
      : values.child === 'prom-client'
        ? promClientChild(dir)
        : await sortChild(dir);
  console.log(JSON.stringify(out));
  process.exit(0);
}

// ---- the parent ----

/** The installed package of `patchFile` with the patch reversed, copied into `tmp`. */
function unpatchedCopy(tmp: string, patchFile: string): string {
  // patch-package names files `@scope+name+1.2.3.patch`.
  const name = patchFile.replace(/\+[^+]+\.patch$/, '').replace('+', '/');
  const copy = join(tmp, name);
  cpSync(join(ROOT, 'node_modules', name), copy, { recursive: true });
  // Paths in the patch are a/node_modules/<name>/...
  const strip = 2 + name.split('/').length;
  execFileSync('patch', ['-R', '--quiet', `-p${strip}`, '-d', copy, '-i', join(PATCHES, patchFile)]);
  return copy;
}

/** Median and spread of `xs`, as text. */
function stat(xs: number[], digits = 1): string {
  const s = [...xs].sort((x, y) => x - y);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `${med.toFixed(digits)} (${s[0].toFixed(digits)}-${s.at(-1)?.toFixed(digits)})`;
}

/** Runs one child measurement `runs` times. */
function children<T>(child: string, dir: string, runs: number): T[] {
  return Array.from({ length: runs }, () => {
    const out = execFileSync(
      process.execPath,
      [import.meta.filename, '--child', child, '--dir', dir, '--mb', values.mb],
      { encoding: 'utf8', timeout: 600_000 },
    );
    return JSON.parse(out.trim().split('\n').at(-1) ?? '') as T;
  });
}

/** 1: window updates sent while a stream of the yamux in `streamJs` receives `n` messages. */
async function windowUpdates(streamJs: string, n: number): Promise<number> {
  const { YamuxStream, StreamState } = await import(pathToFileURL(streamJs).href);
  const quiet = Object.assign(() => {}, { enabled: false, error() {}, trace() {}, newScope: () => quiet });
  let updates = 0;
  const s = new YamuxStream({
    id: '1',
    streamId: 1,
    state: StreamState.Established,
    direction: 'inbound',
    log: quiet,
    initialStreamWindowSize: WINDOW,
    maxStreamWindowSize: WINDOW,
    getRTT: () => -1,
    sendFrame: (h: { type: number }) => {
      if (h.type === 1) updates++;
      return true;
    },
  });
  const { Uint8ArrayList } = await import('uint8arraylist');
  for (let i = 0; i < n; i++) {
    s.handleData({
      header: { type: 0, flag: 0, streamID: 1, length: MESSAGE_BYTES },
      data: new Uint8ArrayList(new Uint8Array(MESSAGE_BYTES)),
    });
  }
  return updates;
}

const runs = Number(values.runs);
const tmp = mkdtempSync(join(ROOT, '.tools', 'bench-patches-'));
try {
  const files = readdirSync(PATCHES).filter((f) => f.endsWith('.patch'));
  const file = (prefix: string) => {
    const f = files.find((x) => x.startsWith(prefix));
    if (!f) throw new Error(`no patch ${prefix}* in patches/`);
    return f;
  };
  console.log(`== dependency patches: median (min-max) of ${runs} runs, patched vs unpatched ==`);

  const yamux = unpatchedCopy(tmp, file('@chainsafe+libp2p-yamux+'));
  const n = Number(values.messages);
  const streamJs = (dir: string) => join(dir, 'dist', 'src', 'stream.js');
  const installedYamux = join(ROOT, 'node_modules', '@chainsafe', 'libp2p-yamux');
  const yp: number[] = [];
  const yu: number[] = [];
  for (let r = 0; r < runs; r++) {
    yp.push(await windowUpdates(streamJs(installedYamux), n));
    yu.push(await windowUpdates(streamJs(yamux), n));
  }
  console.log(`\nyamux: window-update frames sent per ${n} messages of ${MESSAGE_BYTES} B`);
  console.log(`  patched    ${stat(yp, 0)}`);
  console.log(`  unpatched  ${stat(yu, 0)}`);

  type Salsa = { mb: number; error?: string; memoryMiB: number; wallS: number; cpuS: number };
  const salsa = unpatchedCopy(tmp, file('xsalsa20+'));
  console.log(`\nxsalsa20: ${values.mb} MB through two instances in turn (writes of 64 KiB to 4 MiB)`);
  for (const [label, dir] of [
    ['patched  ', join(ROOT, 'node_modules', 'xsalsa20')],
    ['unpatched', salsa],
  ] as const) {
    const rs = children<Salsa>('xsalsa20', dir, runs);
    const threw = rs.filter((x) => x.error);
    console.log(
      `  ${label}  through ${stat(
        rs.map((x) => x.mb),
        0,
      )} MB, wasm memory ${stat(rs.map((x) => x.memoryMiB))} MiB, wall ${stat(
        rs.map((x) => x.wallS),
        2,
      )} s, CPU ${stat(
        rs.map((x) => x.cpuS),
        2,
      )} s, threw ${threw.length}/${rs.length}${threw[0] ? `: ${threw[0].error}` : ''}`,
    );
  }

  type Sort = { equal: boolean; rssMiB: number; ms: number };
  const record = unpatchedCopy(tmp, file('@libp2p+peer-record+'));
  // peer-store's sorts are the same comparison; its patch is checked by the unit tests.
  file('@libp2p+peer-store+');
  const utils = (dir: string) => join(dir, 'dist', 'src', 'peer-record', 'utils.js');
  console.log('\npeer-record/peer-store sort: RSS added by the first sort of three multiaddrs');
  for (const [label, dir] of [
    ['patched  ', join(ROOT, 'node_modules', '@libp2p', 'peer-record')],
    ['unpatched', record],
  ] as const) {
    const rs = children<Sort>('sort', utils(dir), runs);
    if (rs.some((x) => !x.equal)) throw new Error(`${label.trim()} sort: arrays not equal`);
    console.log(
      `  ${label}  RSS +${stat(
        rs.map((x) => x.rssMiB),
        2,
      )} MiB, ${stat(
        rs.map((x) => x.ms),
        2,
      )} ms`,
    );
  }

  type Prom = { rssMiB: number; tls: boolean };
  const prom = unpatchedCopy(tmp, file('prom-client+'));
  console.log("\nprom-client: RSS added by require('prom-client')");
  for (const [label, dir] of [
    ['patched  ', join(ROOT, 'node_modules', 'prom-client')],
    ['unpatched', prom],
  ] as const) {
    const rs = children<Prom>('prom-client', dir, runs);
    const tls = rs.filter((x) => x.tls).length;
    console.log(`  ${label}  RSS +${stat(rs.map((x) => x.rssMiB))} MiB, TLS loaded ${tls}/${rs.length}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
