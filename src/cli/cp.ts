/**
 * `plexus cp [-r] [--resume] SRC DST`, with `NODE:/PATH` on one side (issue 16; docs/shell.md):
 * files and trees both ways through any entry node, as the node's shell user. Each file goes in
 * frames of 128 KiB, is written under a temporary name at its destination, and is moved into
 * place only when the sha256 of what landed matches the source's; mode and mtime are kept.
 * `--resume` continues from a temporary file an interrupted copy left. A progress line with
 * speed and ETA goes to a terminal's stderr.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import type { AgentClient } from './client.ts';
import { type ChannelOffer, directRoute, openChannel, type SocksRoute, settled } from './cp-direct.ts';
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
/** The fast path's read buffers, 1 MiB each (sendRaw). */
const DIRECT_BUFFERS = 4;

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

/** Sends `local` from `from` over a node's channel, hashing and counting as it goes. */
async function sendRaw(
  route: SocksRoute,
  node: string,
  offer: ChannelOffer,
  local: string,
  from: number,
  h: ReturnType<typeof createHash>,
  bar: { add(n: number): void },
): Promise<void> {
  const socket = await openChannel(route, node, offer);
  const over = settled(socket);
  over.catch(() => {});
  const file = await open(local, 'r');
  try {
    // A few 1 MiB buffers in turn, each read into again once the socket has written it out (its
    // write callback): a fresh buffer per read (createReadStream) cost ~0.9 s of allocation and
    // garbage collection per 512 MiB (CPU profile). At most DIRECT_BUFFERS MiB wait in the socket.
    const free = Array.from({ length: DIRECT_BUFFERS }, () => Buffer.allocUnsafe(1 << 20));
    let returned: (() => void) | undefined;
    for (let pos = from; ; ) {
      while (free.length === 0) {
        await Promise.race([new Promise<void>((r) => (returned = r)), over]);
        if (socket.destroyed && free.length === 0) {
          await over;
          throw new CliError('the copy connection closed before the whole file was sent');
        }
      }
      if (socket.destroyed) break; // over says how
      const buf = free.pop()!;
      const { bytesRead } = await file.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const c = buf.subarray(0, bytesRead);
      h.update(c);
      bar.add(bytesRead);
      socket.write(c, () => {
        free.push(buf);
        returned?.();
      });
    }
  } finally {
    await file.close();
  }
  socket.end();
  await over;
}

/** Receives a node's channel into the open partial file `fd`. */
async function receiveRaw(
  route: SocksRoute,
  node: string,
  offer: ChannelOffer,
  fd: Awaited<ReturnType<typeof open>>,
  local: string,
  h: ReturnType<typeof createHash>,
  bar: { add(n: number): void },
): Promise<void> {
  const socket = await openChannel(route, node, offer);
  try {
    // Hashed as it comes; written through a stream that gathers what arrives while a write is
    // under way into one writev (awaiting each 64 KiB read's own write cost a thread-pool round
    // trip apiece); the socket waits while the disk catches up.
    socket.on('data', (c: Buffer) => {
      h.update(c);
      bar.add(c.length);
    });
    // The numeric fd: a stream holding the FileHandle itself keeps `fd.close()` waiting for the
    // stream's own close, which autoClose: false never does.
    const out = createWriteStream('', { fd: fd.fd, autoClose: false, highWaterMark: 1 << 20 });
    await new Promise<void>((resolve, reject) => {
      out.once('finish', resolve);
      out.once('error', reject);
      socket.once('error', reject);
      socket.once('close', () => {
        if (!socket.readableEnded) reject(new Error('the connection closed before its end'));
      });
      socket.pipe(out);
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(
      e.code === 'ENOSPC' ? `${local}: no space left on this disk` : `${local}: the copy broke: ${e.message}`,
    );
  } finally {
    // The node's end came (or the copy failed): nothing more to say on it; the sha256 decides.
    socket.destroy();
  }
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
