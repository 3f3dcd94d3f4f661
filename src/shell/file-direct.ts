/**
 * `fs.read` and `fs.write` with `direct: true`: the file's bytes go over a one-shot binary
 * channel (transfer-channel.ts) instead of base64 JSON frames. The signed command still
 * authorises the copy, names the user, and carries what decides it: the sha256 (signed by the
 * operator into the last input frame for an upload, signed by this node into the result for a
 * download). The tools are those of the JSON path (`cat`, `tail -c +N` from an offset, `cat >>`), run as the
 * user; the channel's in-process end is joined straight to them, no frames and no encoding in between.
 */
import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import type { ActionContext } from '../core/actions.ts';
import { userBufferReader } from '../runtime/socket-reader.ts';
import { BadSessionFrameError, FileTransferError, TransferChannelError } from './errors.ts';
import { describePath, runAsUser, toolError } from './file-ops.ts';
import type { ChannelSocket, TransferChannels } from './transfer-channel.ts';
import { asUser, type SessionUser, sessionCwd, sessionEnv } from './users.ts';

/** A progress frame this often, so no transport in between sees an idle command. */
const PROGRESS_EVERY_MS = 10_000;
const SHA256_RE = /^[0-9a-f]{64}$/;

/** Opens a channel and tells the operator (signed data frame) where and with which secret. */
async function announce(channels: TransferChannels, ctx: ActionContext, ready: Record<string, unknown>) {
  const ch = await channels.open(ctx.signal, { kid: ctx.caller.kid, command: ctx.commandId });
  await ctx.emit({ ready: { ...ready, service: ch.service, secret: ch.secret.toString('base64') } });
  return ch.accepted;
}

/**
 * Runs `argv` as `u` with one end of its stdio on `socket`; resolves with its stderr. With
 * `hash`, what goes into the tool's stdin (or comes out of its stdout) is hashed on the way.
 */
function runJoined(
  u: SessionUser,
  argv: string[],
  socket: ChannelSocket,
  head: Buffer,
  dir: 'in' | 'out',
  ctx: ActionContext,
  hash?: Hash,
) {
  const child = spawn(asUser(u, argv)[0], asUser(u, argv).slice(1), {
    env: sessionEnv(u, undefined),
    cwd: sessionCwd(u),
    stdio: [dir === 'in' ? 'pipe' : 'ignore', dir === 'out' ? 'pipe' : 'ignore', 'pipe'],
  });
  let stderr = '';
  let bytes = 0;
  let broken = false;
  child.stderr!.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const kill = () => child.kill('SIGKILL');
  ctx.signal.addEventListener('abort', kill, { once: true });
  socket.on('error', () => {
    broken = true;
    kill();
  });
  if (dir === 'in') {
    const stdin = child.stdin!;
    stdin.on('error', () => {});
    stdin.write(head);
    hash?.update(head);
    bytes += head.length;
    // Each chunk goes into the pipe as it comes (the tunnel gathers a read's TLS records into
    // one), and the tunnel's write completes once the pipe took it: until then its buffer is
    // not reused, and the next waits (cat's pace holds the sender back).
    socket.consume((c, done) => {
      bytes += c.length;
      hash?.update(c);
      stdin.write(c, () => done());
    });
    socket.once('end', () => stdin.end());
    socket.resume();
  } else {
    const out = child.stdout!;
    // cat's pipe is read into a shared buffer (no 64 KiB Buffer per read: those made V8 run a
    // full mark-compact every few dozen MB), each read hashed and handed to the tunnel at once.
    const reader = userBufferReader(out);
    const resume = () => out.resume();
    reader.set((c) => {
      bytes += c.length;
      hash?.update(c);
      if (!socket.writeTransient(c)) {
        out.pause();
        socket.once('drain', resume);
      }
    });
    out.once('end', () => socket.end());
    out.resume();
  }
  const tick = setInterval(() => void ctx.emit({ progress: bytes }).catch(() => {}), PROGRESS_EVERY_MS);
  return new Promise<{ code: number | null; stderr: string; bytes: number; broken: boolean }>(
    (resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => {
        clearInterval(tick);
        ctx.signal.removeEventListener('abort', kill);
        resolve({ code, stderr, bytes, broken });
      });
    },
  );
}

/** Streams `path` from `offset` over a channel, into `hash` too if given; resolves with the bytes sent. */
export async function readDirect(
  channels: TransferChannels,
  u: SessionUser,
  path: string,
  offset: number,
  ctx: ActionContext,
  hash?: Hash,
): Promise<number> {
  const { socket, head } = await announce(channels, ctx, { offset });
  if (head.length > 0) {
    socket.resetAndDestroy();
    throw new TransferChannelError('TRANSFER_REFUSED', 'a download channel takes no bytes after its secret');
  }
  // `cat` from the start: `tail -c +N` copies in 8 KiB reads and 4 KiB writes (strace), 32 times
  // the syscalls of `cat`'s 128 KiB blocks, each pipe write a wake-up of the agent's read. A
  // resumed read (rare) keeps `tail`.
  const tool = offset === 0 ? ['cat', '--', path] : ['tail', '-c', `+${offset + 1}`, '--', path];
  const r = await runJoined(u, tool, socket, head, 'out', ctx, hash);
  if (r.code !== 0) {
    socket.resetAndDestroy();
    throw toolError(path, r.stderr);
  }
  await new Promise<void>((resolve) => {
    if (socket.destroyed || socket.writableFinished) return resolve();
    socket.once('close', () => resolve());
    socket.once('finish', () => resolve());
  });
  // All of it is with the kernel, which still delivers it after the close; the caller sends nothing.
  socket.destroy();
  return r.bytes;
}

/**
 * `fs.read` with `direct: true`: sends `path` from `offset`; resolves with the bytes sent and the
 * file's sha256 for the node to sign. A whole file is hashed (node:crypto) as `cat` hands it
 * over: the `sha256sum` pass it replaces re-read the file at about a quarter of that speed, ~2.7 s
 * of CPU after a 512 MiB download. What the re-read also caught, a file changed during the copy,
 * is caught by its size and mtime (ns) before and after (`FILE_CHANGED`). A resumed read (rare)
 * still hashes the whole file afterwards, its prefix being on the node only.
 */
export async function readFileDirect(
  channels: TransferChannels,
  u: SessionUser,
  path: string,
  offset: number,
  ctx: ActionContext,
): Promise<{ bytes: number; sha256: string }> {
  const [before] = offset === 0 ? await describePath(u, path, false) : [undefined];
  if (before?.type !== 'f') {
    const bytes = await readDirect(channels, u, path, offset, ctx);
    const sum = await runAsUser(u, ['sha256sum', '--', path]);
    if (sum.code !== 0) throw toolError(path, sum.stderr);
    return { bytes, sha256: sum.stdout.toString().slice(0, 64) };
  }
  const hash = createHash('sha256');
  const bytes = await readDirect(channels, u, path, 0, ctx, hash);
  const [after] = await describePath(u, path, false);
  if (bytes !== before.size || after.size !== before.size || after.mtime !== before.mtime)
    throw new FileTransferError('FILE_CHANGED', `${path}: the file changed during the copy; copy it again`);
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * Appends what arrives on a channel to `part` (as `u`), then waits for the operator's signed end
 * frame; resolves with the bytes received, the sha256 the operator signed, and the sha256 of
 * the whole partial file as written (`prefix`: the state of its first `offset` bytes).
 */
export async function writeDirect(
  channels: TransferChannels,
  u: SessionUser,
  path: string,
  part: string,
  offset: number,
  prefix: Hash,
  ctx: ActionContext,
): Promise<{ bytes: number; sha256: string; written: string }> {
  const { socket, head } = await announce(channels, ctx, { offset });
  const r = await runJoined(u, ['sh', '-c', 'exec cat >> "$1"', 'sh', part], socket, head, 'in', ctx, prefix);
  socket.destroy();
  if (r.broken)
    throw new TransferChannelError(
      'TRANSFER_BROKEN',
      `${path}: the transfer connection broke after ${r.bytes} bytes; continue with --resume`,
    );
  if (r.code !== 0) throw toolError(path, r.stderr || 'the write was interrupted');
  const input = ctx.input[Symbol.asyncIterator]();
  for (;;) {
    const next = await input.next();
    if (next.done) throw new BadSessionFrameError('the file ended without its sha256; resume with --resume');
    const f = next.value as { t?: unknown; sha256?: unknown };
    if (f.t === 'p') continue;
    if (f.t !== 'e' || typeof f.sha256 !== 'string' || !SHA256_RE.test(f.sha256))
      throw new BadSessionFrameError('a direct copy sends only keep-alives, then its sha256');
    return { bytes: r.bytes, sha256: f.sha256, written: prefix.digest('hex') };
  }
}
