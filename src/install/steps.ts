/**
 * Install and uninstall as a list of steps, each of which knows whether it is needed: a second
 * run finds nothing to do (idempotent), and `--dry-run` prints every file and command without
 * running any.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { InstallStepError } from './errors.ts';
import { pointAt } from './switch.ts';

/** One thing an install or uninstall does. */
export interface Step {
  /** What it does, as printed: a file with its mode, a link, or a command line. */
  describe: string;
  /** False when the system already is as the step would make it. */
  needed(): boolean;
  apply(): void;
}

/** Runs (or, dry, prints) the steps in order; returns how many changed something. */
export function runSteps(steps: Step[], o: { dryRun: boolean; log(line: string): void }): number {
  let changed = 0;
  for (const s of steps) {
    const needed = s.needed();
    if (o.dryRun) {
      o.log(`${needed ? 'would' : 'ok   '} ${s.describe}`);
      continue;
    }
    if (!needed) continue;
    try {
      s.apply();
    } catch (err) {
      const e = err as Error & { stderr?: Buffer };
      const detail = (e.stderr?.toString().trim() || e.message).split('\n').pop();
      throw new InstallStepError(`${s.describe}: ${detail}`);
    }
    o.log(`done  ${s.describe}`);
    changed++;
  }
  return changed;
}

const read = (p: string) => {
  try {
    return readFileSync(p);
  } catch {
    return undefined;
  }
};

/** Writes `content` to `path` (mode `mode`) when it differs; written whole, then renamed. */
export function fileStep(path: string, content: string | Buffer, mode = 0o644): Step {
  const bytes = Buffer.from(content);
  return {
    describe: `write ${path} (mode ${mode.toString(8)}, ${bytes.length} bytes)`,
    needed: () => !read(path)?.equals(bytes),
    apply: () => {
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
      writeFileSync(`${path}.tmp`, bytes, { mode });
      renameSync(`${path}.tmp`, path);
    },
  };
}

/** Makes `link` a symlink to `target`. */
export function linkStep(link: string, target: string): Step {
  return {
    describe: `link ${link} -> ${target}`,
    needed: () => {
      try {
        return readlinkSync(link) !== target;
      } catch {
        return true;
      }
    },
    apply: () => {
      mkdirSync(dirname(link), { recursive: true, mode: 0o755 });
      pointAt(link, target);
    },
  };
}

/** Removes a file, link or folder when it is there. */
export function removeStep(path: string): Step {
  return {
    describe: `remove ${path}`,
    needed: () => existsSync(path) || isLink(path),
    apply: () => rmSync(path, { recursive: true, force: true }),
  };
}

function isLink(path: string): boolean {
  try {
    readlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command when `needed()` says so (default: always). */
export function commandStep(
  argv: string[],
  needed: () => boolean = () => true,
  env?: NodeJS.ProcessEnv,
): Step {
  return {
    describe: `run ${argv.join(' ')}`,
    needed,
    apply: () => {
      execFileSync(argv[0], argv.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: env ?? process.env,
        timeout: 120_000,
      });
    },
  };
}

/** Runs a command and returns its exit status (0 on success), for the `needed()` checks. */
export function statusOf(argv: string[]): number {
  try {
    execFileSync(argv[0], argv.slice(1), { stdio: 'ignore', timeout: 30_000 });
    return 0;
  } catch (err) {
    return (err as { status?: number }).status ?? 1;
  }
}
