/**
 * The CLI's conventions (issue 15): every verb's --help ends with 1 to 3 examples, `-V` names
 * the version and its runtime, and the completions and man page cover every verb.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const PLEXUS = join(import.meta.dirname, '..', '..', 'bin', 'plexus');
const run = (...args: string[]) => execFileSync(PLEXUS, args, { encoding: 'utf8' });

// Every verb path, from the generated bash completion (itself generated from the verb tree).
const verbs = [...run('completion', 'bash').matchAll(/^\s+" ([a-z -]+)"\) path=/gm)].map((m) => m[1]);

describe('CLI conventions', () => {
  it('finds the verbs', () => {
    assert.ok(verbs.length > 40, `only ${verbs.length} verbs`);
    for (const v of ['install', 'upgrade', 'uninstall', 'repair', 'release sign', 'completion', 'man'])
      assert.ok(verbs.includes(v), v);
  });

  it("every verb's --help ends with 1 to 3 examples", () => {
    const missing: string[] = [];
    for (const v of verbs) {
      const help = run(...v.split(' '), '--help').trimEnd();
      const m = /\nExamples:\n((?: {2}\$ .+\n?){1,3})$/.exec(help);
      if (!m) missing.push(v);
    }
    assert.deepEqual(missing, []);
  });

  it('logs --since refuses a bad duration in one line (exit 2) before it asks any agent', () => {
    for (const bad of ['10x', '0m']) {
      const r = spawnSync(
        PLEXUS,
        ['logs', 'web', '--json', '--since', bad, '--nostream', '--data-dir', '/nonexistent'],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(r.status, 2, `${bad}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /--since/);
    }
  });

  it('-V and --version name the version and the Node that runs it', () => {
    assert.match(run('-V'), /^plexus \d+\.\d+\.\d+\S* \(node v\d+\.\d+\.\d+, \/\S+\/node\)\n$/);
    assert.equal(run('--version'), run('-V'));
  });

  it('completions for bash, zsh and fish, and the man page, name every top-level verb', () => {
    const man = run('man');
    assert.match(man, /^\.TH PLEXUS 1/);
    const fish = run('completion', 'fish');
    const zsh = run('completion', 'zsh');
    assert.match(zsh, /^#compdef plexus/);
    for (const v of verbs.filter((x) => !x.includes(' '))) {
      assert.match(man, new RegExp(`\\.B plexus ${v.replace(/-/g, '\\\\-')} `), `man: ${v}`);
      assert.match(fish, new RegExp(`-a ${v} `), `fish: ${v}`);
    }
    assert.throws(() => run('completion', 'tcsh'), /status 2|exit code 2|Command failed/);
  });
});
