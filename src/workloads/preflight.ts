/**
 * Checks run before a new release replaces a running one, so that the common mistakes fail with
 * a clear message while the old release keeps running: a command that does not exist, and a port
 * that something else already holds.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, isAbsolute, join } from 'node:path';
import { InvalidSpecError, PortInUseError } from './errors.ts';

/** Shell builtins and keywords a command may start with; they cannot be looked up on PATH. */
const SHELL_WORDS = new Set([
  'cd',
  'exec',
  '.',
  'source',
  'set',
  'export',
  'eval',
  'test',
  '[',
  'true',
  'false',
  'umask',
  'ulimit',
  'if',
  'for',
  'while',
  'case',
  '{',
  '(',
]);

/** The program a shell command runs first, skipping `NAME=value` prefixes; undefined when unclear. */
export function firstProgram(cmd: string): string | undefined {
  const words = cmd.trim().split(/\s+/);
  for (const w of words) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) continue;
    // Quotes, expansions and redirections make the word's meaning a shell matter: do not guess.
    if (/["'`$\\<>|;&(){}*?]/.test(w)) return undefined;
    return w;
  }
  return undefined;
}

/** Throws COMMAND_NOT_FOUND when the command's program is neither in the release nor on PATH. */
export function checkCommand(cmd: string, releaseDir: string, path: string | undefined): void {
  const prog = firstProgram(cmd);
  if (!prog || SHELL_WORDS.has(prog)) return;
  const candidates = prog.includes('/')
    ? [isAbsolute(prog) ? prog : join(releaseDir, prog)]
    : (path ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(isAbsolute(d) ? d : join(releaseDir, d), prog));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return;
    } catch {
      // try the next one
    }
  }
  const where = prog.includes('/') ? 'in the release (is it executable?)' : 'on PATH';
  throw new InvalidSpecError(
    'COMMAND_NOT_FOUND',
    `command '${prog}' not found ${where}; fix --cmd or the bundle's plexus.yaml`,
  );
}

/** Throws PortInUseError when `port` cannot be bound on all interfaces. */
export function checkPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new PortInUseError(port));
      else resolve(); // EACCES on a low port etc.: the app's own start will say why
    });
    server.listen({ port, exclusive: true }, () => server.close(() => resolve()));
  });
}
