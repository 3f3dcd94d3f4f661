/**
 * Session recordings (`shell.record: true`): asciicast v2 files (a JSON header line, then one
 * `[seconds, "o", text]` line per output chunk and `[seconds, "r", "COLSxROWS"]` per resize),
 * replayable with `plexus audit play ID` or asciinema. Only what the terminal showed is written,
 * never the keys typed (a password typed at a prompt that does not echo stays unrecorded). Files
 * live in DATA/recordings (0700), one per session, at most `keep` of them (the oldest go first),
 * each at most `maxBytes` (past it the session goes on and the file says it was cut).
 */
import { closeSync, mkdirSync, openSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/** Where and how much to record. */
export interface RecorderInit {
  dir: string;
  keep: number;
  maxBytes: number;
}

/** One session's recording. */
export interface Recording {
  readonly file: string;
  output(chunk: Buffer): void;
  resize(cols: number, rows: number): void;
  close(): void;
}

/** A recording id is the session id: a file name of safe characters only. */
export const RECORDING_ID_RE = /^[A-Za-z0-9_-]{16,64}$/;

/** The path of session `id`'s recording. */
export function recordingPath(dir: string, id: string): string {
  return join(dir, `${id}.cast`);
}

/** Opens a recording for session `id`, after making room for it. */
export function startRecording(
  init: RecorderInit,
  id: string,
  header: { cols: number; rows: number; term?: string; command?: string },
): Recording {
  mkdirSync(init.dir, { recursive: true, mode: 0o700 });
  rotate(init.dir, init.keep - 1);
  const file = recordingPath(init.dir, id);
  const fd = openSync(file, 'wx', 0o600);
  const started = performance.now();
  const decoder = new StringDecoder('utf8');
  let size = 0;
  let open = true;
  const line = (value: unknown) => {
    if (!open) return;
    const text = `${JSON.stringify(value)}\n`;
    const bytes = Buffer.byteLength(text);
    if (size + bytes > init.maxBytes) {
      writeSync(fd, `${JSON.stringify([elapsed(), 'm', 'recording cut: shell.recordMaxBytes reached'])}\n`);
      open = false;
      return;
    }
    size += bytes;
    writeSync(fd, text);
  };
  const elapsed = () => Math.round(performance.now() - started) / 1000;
  line({
    version: 2,
    width: header.cols,
    height: header.rows,
    timestamp: Math.floor(Date.now() / 1000),
    ...(header.command ? { command: header.command } : {}),
    env: { TERM: header.term ?? 'xterm-256color' },
  });
  return {
    file,
    output(chunk) {
      const text = decoder.write(chunk);
      if (text) line([elapsed(), 'o', text]);
    },
    resize(cols, rows) {
      line([elapsed(), 'r', `${cols}x${rows}`]);
    },
    close() {
      const rest = decoder.end();
      if (rest) line([elapsed(), 'o', rest]);
      open = false;
      closeSync(fd);
    },
  };
}

/** Deletes the oldest recordings until at most `keep` remain. */
function rotate(dir: string, keep: number): void {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cast'))
    .map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => a.t - b.t);
  for (const { f } of files.slice(0, Math.max(0, files.length - Math.max(0, keep)))) {
    try {
      unlinkSync(join(dir, f));
    } catch {
      // removed meanwhile
    }
  }
}
