/**
 * A bounded request loop on 127.0.0.1:PORT inside network namespace `ns` (load-cli.ts under `ip
 * netns exec`), for an app behind a kernel redirect that lives in that namespace.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const CLI = resolve(import.meta.dirname, 'load-cli.ts');

/** A running loop in a namespace: how many requests it made so far, and how to stop it. */
export interface NetnsLoad {
  count(): number;
  stop(): Promise<{ sent: number; failed: string }>;
}

/** Starts the loop; it stops by itself after `maxMs`. */
export function startLoadInNetns(ns: string, port: number, maxMs: number): NetnsLoad {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, String(port), String(maxMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let n = 0;
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    const lines = out.split('\n');
    out = lines.pop() ?? '';
    for (const l of lines) {
      if (l.startsWith('n ')) n = Number(l.slice(2));
      else if (l.startsWith('{')) result = JSON.parse(l);
    }
  });
  let result: { sent: number; failed: string } | undefined;
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  return {
    count: () => n,
    async stop() {
      child.stdin.end();
      await closed;
      if (!result) throw new Error('the load loop ended without a result');
      return result;
    },
  };
}
