/**
 * `plexus cp [-r] [--resume] SRC DST`, with `NODE:/PATH` on one side (issue 16; docs/shell.md):
 * files and trees both ways through any entry node, as the node's shell user. Each file goes in
 * frames of 128 KiB, is written under a temporary name at its destination, and is moved into
 * place only when the sha256 of what landed matches the source's; mode and mtime are kept.
 * `--resume` continues from a temporary file an interrupted copy left. A progress line with
 * speed and ETA goes to a terminal's stderr.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import type { AgentClient } from './client.ts';
import { type ChannelOffer, directRoute, receiveRaw, type SocksRoute, sendRaw } from './cp-direct.ts';
import { CliError, UsageError } from './errors.ts';
import { sessionClient } from './shell.ts';

/** One side of a copy. */
type Side = { node: string; path: string } | { node?: undefined; path: string };

/** A remote entry as `fs.stat` describes it. */
interface RemoteEntry {
  rel: string;
  type: 'f' | 'd';
  mode: number;
  size: number;
  mtime: number;
}

/** One frame carries this much of a file (the node takes up to 256 KiB). */
const CHUNK = 128 * 1024;

/** `NODE:PATH` (a node name or peer id, then a colon), else a local path. */
export function parseSide(arg: string): Side {
  const m = /^([A-Za-z0-9][A-Za-z0-9-]{0,62}|12D3Koo[A-Za-z0-9]{40,60}):(.*)$/.exec(arg);
  if (!m) return { path: arg };
  if (!m[2].startsWith('/')) throw new UsageError(`${arg}: a node's path must be absolute (${m[1]}:/path)`);
  return { node: m[1], path: m[2] };
}

/** The temporary name a file has until it is complete (the node uses the same). */
function partialOf(path: string): string {
  return join(dirname(path), `.${basename(path)}.plexus-part`);
}

/** A progress line on a terminal: name, percent, speed and ETA; nothing elsewhere. */
function progress(name: string, total: number) {
  const tty = process.stderr.isTTY === true;
  const t0 = performance.now();
  let last = 0;
  let done = 0;
  const draw = (final: boolean) => {
    const s = (performance.now() - t0) / 1000;
    const rate = s > 0 ? done / s : 0;
    const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
    const eta = rate > 0 ? Math.ceil((total - done) / rate) : 0;
    process.stderr.write(
      `\r${name.slice(-40).padEnd(40)} ${String(pct).padStart(3)}% ${(rate / 1e6).toFixed(1).padStart(7)} MB/s ${final ? `${s.toFixed(1)}s`.padStart(6) : `ETA ${eta}s`.padStart(6)}${final ? '\n' : ''}`,
    );
  };
  return {
    add(n: number) {
      done += n;
      if (tty && performance.now() - last > 200) {
        last = performance.now();
        draw(false);
      }
    },
    end() {
      if (tty) draw(true);
    },
  };
}

async function hashFile(path: string, end?: number): Promise<ReturnType<typeof createHash>> {
  const h = createHash('sha256');
  if (end === 0) return h;
  for await (const c of createReadStream(path, {
    end: end === undefined ? undefined : end - 1,
    highWaterMark: 1 << 20,
  }))
    h.update(c as Buffer);
  return h;
}

/** Sends one local file to `path` on the node. */
async function upload(
  client: AgentClient,
  local: string,
  st: Stats,
  path: string,
  o: CpOptions,
): Promise<void> {
  let ready: (offer: ChannelOffer) => void = () => {};
  const offered = new Promise<ChannelOffer>((r) => {
    ready = r;
  });
  let finished: () => void = () => {};
  const over = new Promise<void>((r) => {
    finished = r;
  });
  const bar = progress(local, st.size);
  const frames = (async function* () {
    const offer = await offered;
    const from = offer.offset;
    if (from > 0) process.stderr.write(`plexus: resuming ${local} at byte ${from}\n`);
    if (from > st.size)
      throw new CliError(
        `${path}: the node's partial copy is longer than ${local}; copy again without --resume`,
      );
    const h = await hashFile(local, from);
    bar.add(from);
    if (o.route) {
      const sent = sendRaw(o.route, o.node!, offer, local, from, h, bar).then(
        () => 'sent' as const,
        (err: Error) => err,
      );
      let outcome: 'sent' | Error | undefined;
      void sent.then((v) => {
        outcome = v;
      });
      // Keep-alives while the bytes go around: the command's input must not look idle.
      while (outcome === undefined) {
        let timer: NodeJS.Timeout | undefined;
        const tick = new Promise((r) => {
          timer = setTimeout(r, 10_000);
        });
        await Promise.race([sent, tick]).finally(() => clearTimeout(timer));
        if (outcome === undefined) yield { t: 'p' };
      }
      if (outcome instanceof Error) {
        // The node's verdict (a full disk, a refused channel) says more than a broken socket.
        let timer: NodeJS.Timeout | undefined;
        const ended = await Promise.race([
          over.then(() => true),
          new Promise<false>((r) => {
            timer = setTimeout(r, 5_000, false);
          }),
        ]).finally(() => clearTimeout(timer));
        if (ended) return;
        throw outcome;
      }
    } else if (from < st.size)
      for await (const c of createReadStream(local, { start: from, highWaterMark: CHUNK })) {
        h.update(c as Buffer);
        bar.add((c as Buffer).length);
        yield { t: 'd', d: (c as Buffer).toString('base64') };
      }
    yield { t: 'e', sha256: h.digest('hex') };
    await over;
  })();
  try {
    await client.call(
      'fs.write',
      {
        path,
        mode: st.mode & 0o7777,
        mtime: st.mtimeMs / 1000,
        resume: o.resume,
        ...(o.route ? { direct: true } : {}),
        ...(o.user ? { user: o.user } : {}),
      },
      {
        live: frames,
        onData: (d) => {
          const r = (d as { ready?: ChannelOffer }).ready;
          if (r) ready(r);
        },
      },
    );
  } finally {
    finished();
  }
  bar.end();
}

/** Fetches one file from the node into `local`. */
async function download(
  client: AgentClient,
  path: string,
  entry: RemoteEntry,
  local: string,
  o: CpOptions,
): Promise<void> {
  const part = partialOf(local);
  let from = 0;
  if (o.resume)
    from = await stat(part).then(
      (s) => (s.size <= entry.size ? s.size : 0),
      () => 0,
    );
  if (from > 0) process.stderr.write(`plexus: resuming ${path} at byte ${from}\n`);
  // The sha256 of the partial file as it is written (its prefix first, when resumed): no re-read.
  const h = await hashFile(part, from);
  const fd = await open(part, from > 0 ? 'a' : 'w', 0o600);
  const bar = progress(path, entry.size);
  bar.add(from);
  let r: { sha256: string };
  let received: Promise<void> | undefined;
  try {
    r = (await client.call(
      'fs.read',
      { path, offset: from, ...(o.route ? { direct: true } : {}), ...(o.user ? { user: o.user } : {}) },
      {
        onData: async (d) => {
          const offer = (d as { ready?: ChannelOffer }).ready;
          if (offer) {
            received = receiveRaw(o.route!, o.node!, offer, fd, local, h, bar);
            received.catch(() => {});
            return;
          }
          if (typeof (d as { o?: unknown }).o !== 'string') return;
          const chunk = Buffer.from((d as { o: string }).o, 'base64');
          await fd.write(chunk).catch((err: NodeJS.ErrnoException) => {
            throw new CliError(
              err.code === 'ENOSPC' ? `${local}: no space left on this disk` : `${local}: ${err.message}`,
            );
          });
          h.update(chunk);
          bar.add(chunk.length);
        },
      },
    )) as { sha256: string };
    if (o.route && !received) throw new CliError(`${path}: the node sent no copy channel`);
    await received;
    await fd.sync().catch(() => {});
  } finally {
    await fd.close();
  }
  if (h.digest('hex') !== r.sha256) {
    await rm(part, { force: true });
    throw new CliError(
      `${local}: the copy's sha256 differs from ${path} on the node (did it change during the copy?); nothing was replaced`,
    );
  }
  await chmod(part, entry.mode & 0o7777);
  await utimes(part, new Date(), new Date(entry.mtime * 1000));
  await rename(part, local);
  bar.end();
}

interface CpOptions {
  recursive?: boolean;
  resume?: boolean;
  user?: string;
  /** The local agent's SOCKS proxy, for the binary fast path (cp-direct.ts); frames without it. */
  route?: SocksRoute;
  node?: string;
}

async function statRemote(
  client: AgentClient,
  path: string,
  o: CpOptions,
  recursive: boolean,
): Promise<RemoteEntry[] | undefined> {
  try {
    return (await client.call('fs.stat', {
      path,
      recursive,
      ...(o.user ? { user: o.user } : {}),
    })) as RemoteEntry[];
  } catch (err) {
    if ((err as { body?: { code?: string } }).body?.code === 'PATH_NOT_FOUND') return undefined;
    throw err;
  }
}

async function copyUp(client: AgentClient, src: string, dst: string, o: CpOptions): Promise<void> {
  const st = await stat(src).catch(() => {
    throw new CliError(`${src}: no such file or directory`);
  });
  const there = await statRemote(client, dst, o, false);
  const target = there?.[0]?.type === 'd' ? join(dst, basename(src)) : dst;
  if (st.isFile()) return upload(client, src, st, target, o);
  if (!st.isDirectory()) throw new CliError(`${src}: only files and directories are copied`);
  if (!o.recursive) throw new UsageError(`${src} is a directory: use -r`);
  const walk = async (local: string, remote: string, s: Stats): Promise<void> => {
    await client.call('fs.mkdir', {
      path: remote,
      mode: s.mode & 0o7777,
      ...(o.user ? { user: o.user } : {}),
    });
    for (const e of await readdir(local, { withFileTypes: true })) {
      const lp = join(local, e.name);
      const es = await stat(lp);
      if (e.isDirectory()) await walk(lp, `${remote}/${e.name}`, es);
      else if (e.isFile()) await upload(client, lp, es, `${remote}/${e.name}`, o);
    }
  };
  await walk(src, target, st);
}

async function copyDown(client: AgentClient, src: string, dst: string, o: CpOptions): Promise<void> {
  const entries = await statRemote(client, src, o, o.recursive === true);
  if (!entries) throw new CliError(`${src}: no such file or directory on the node`);
  const root = entries.find((e) => e.rel === '')!;
  const here = await stat(dst).catch(() => undefined);
  const target = here?.isDirectory() ? join(dst, basename(src)) : dst;
  if (root.type === 'f') return download(client, src, root, target, o);
  if (!o.recursive) throw new UsageError(`${src} is a directory: use -r`);
  for (const e of entries.filter((x) => x.type === 'd').sort((a, b) => a.rel.length - b.rel.length)) {
    await mkdir(join(target, e.rel), { recursive: true });
    await chmod(join(target, e.rel), e.mode & 0o7777);
  }
  for (const e of entries.filter((x) => x.type === 'f'))
    await download(client, `${src}/${e.rel}`, e, join(target, e.rel), o);
}

/** Registers `cp`. */
export function registerCp(program: Command): void {
  program
    .command('cp')
    .description('copy files and trees to or from a node (NODE:/PATH on one side), sha256-checked')
    .argument('<src>', 'a local path or NODE:/PATH')
    .argument('<dst>', 'a local path or NODE:/PATH')
    .option('-r, --recursive', 'copy directories')
    .option('--resume', 'continue an interrupted copy from the partial file it left')
    .option('--user <user>', 'read and write as this user on the node (default: its shell.user)')
    .action(async (srcArg: string, dstArg: string, opts: CpOptions, cmd: Command) => {
      const src = parseSide(srcArg);
      const dst = parseSide(dstArg);
      if (src.node && dst.node)
        throw new UsageError('copy between two nodes through this machine: one side must be local');
      if (!src.node && !dst.node)
        throw new UsageError('one side must be NODE:/PATH (use cp for local copies)');
      const node = (src.node ?? dst.node)!;
      const client = await sessionClient(cmd, node);
      const route = await directRoute(cmd, node);
      if (route) Object.assign(opts, { route, node });
      if (dst.node) await copyUp(client, src.path, dst.path, opts);
      else await copyDown(client, src.path, dst.path, opts);
    });
}
