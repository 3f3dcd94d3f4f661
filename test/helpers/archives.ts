/**
 * Builds archives for tests, including hostile ones no well-behaved tool would write: a tiny
 * zip writer (stored or deflated entries, any name, symlinks) and tar.gz from node-tar with
 * entries whose names or link targets we choose.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import * as tar from 'tar';

/** One entry of a test archive. */
export interface TestEntry {
  name: string;
  /** File content (default empty); for links, the target. */
  data?: string | Buffer;
  type?: 'file' | 'dir' | 'symlink';
  /** Unix mode bits (default 0644 / 0755 / 0777). */
  mode?: number;
  /** Zip only: declare this uncompressed size instead of the real one (lying headers). */
  declaredSize?: number;
}

/** Writes a zip file with exactly the given entries (deflated when it helps). */
export function makeZip(entries: TestEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'dir' : 'file');
    const raw = Buffer.from(e.data ?? '');
    const deflated = raw.length > 64 ? deflateRawSync(raw) : undefined;
    const body = deflated ?? raw;
    const method = deflated ? 8 : 0;
    const name = Buffer.from(e.name, 'utf8');
    const unixType = type === 'dir' ? 0o040000 : type === 'symlink' ? 0o120000 : 0o100000;
    const mode = unixType | (e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644));
    const crc = crc32(raw);
    const size = e.declaredSize ?? raw.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** Writes a tar.gz with the given entries (names and link targets taken literally). */
export async function makeTarGz(entries: TestEntry[]): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-tar-'));
  try {
    const out = join(dir, 'out.tgz');
    const pack = new tar.Pack({ gzip: true, portable: true, preservePaths: true });
    const chunks: Buffer[] = [];
    pack.on('data', (c: Buffer) => chunks.push(c));
    const done = new Promise<void>((r) => pack.on('end', () => r()));
    for (const e of entries) {
      const type = e.type ?? (e.name.endsWith('/') ? 'dir' : 'file');
      const data = Buffer.from(type === 'file' ? (e.data ?? '') : '');
      const header = new tar.Header({
        path: e.name,
        mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644),
        size: data.length,
        type: type === 'dir' ? 'Directory' : type === 'symlink' ? 'SymbolicLink' : 'File',
        linkpath: type === 'symlink' ? String(e.data) : undefined,
        mtime: new Date(0),
      });
      const entry = new tar.ReadEntry(header);
      entry.end(data);
      pack.add(entry);
    }
    pack.end();
    await done;
    writeFileSync(out, Buffer.concat(chunks));
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Packs a directory as tar.gz (like `tar czf`). */
export async function tarGzDir(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of tar.c({ gzip: true, cwd: dir, portable: true }, ['.']) as AsyncIterable<Buffer>)
    chunks.push(c);
  return Buffer.concat(chunks);
}

/** Reads every file of a directory (recursively) as zip entries. */
export function zipDir(dir: string): Buffer {
  const entries: TestEntry[] = [];
  const walk = (rel: string) => {
    for (const d of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) {
        entries.push({ name: `${r}/`, type: 'dir' });
        walk(r);
      } else entries.push({ name: r, data: readFileSync(join(dir, r)) });
    }
  };
  walk('');
  return makeZip(entries);
}

/** sha256 hex of a buffer. */
export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Makes a scratch directory with files: `{ 'a/b.txt': 'x' }`. */
export function scratchDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-src-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}
