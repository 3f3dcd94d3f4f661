/** `plexus.yaml` at the root of a bundle: the same fields as the deploy flags, used as defaults. */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import YAML from 'yaml';
import { MAX_MANIFEST_BYTES } from './constants.ts';
import { InvalidSpecError } from './errors.ts';
import { type RunSpecInput, runSpecFields } from './spec.ts';

/** The manifest file names we look for, in order. */
export const MANIFEST_NAMES = ['plexus.yaml', 'plexus.yml'];

/** Reads and validates the manifest of an extracted bundle; undefined when there is none. */
export async function readManifest(dir: string): Promise<RunSpecInput | undefined> {
  for (const name of MANIFEST_NAMES) {
    const path = join(dir, name);
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) continue;
      size = st.size;
    } catch {
      continue;
    }
    if (size > MAX_MANIFEST_BYTES) throw bad(name, `larger than ${MAX_MANIFEST_BYTES} bytes`);
    let raw: unknown;
    try {
      raw = YAML.parse(await readFile(path, 'utf8')) ?? {};
    } catch (err) {
      throw bad(name, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    const parsed = runSpecFields.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw bad(name, `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    return parsed.data;
  }
  return undefined;
}

function bad(name: string, why: string): InvalidSpecError {
  return new InvalidSpecError(
    'BAD_MANIFEST',
    `the bundle's ${name} is invalid: ${why}; fix it and deploy again`,
  );
}
