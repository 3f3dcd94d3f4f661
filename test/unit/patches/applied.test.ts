/**
 * Every patch under patches/ is applied to the installed package it names, at the version it
 * names, and has its upstream issue text beside it. Fails after an install that skipped the
 * patches (`npm install --ignore-scripts`) or when a package was updated without its patch.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const PATCHES = join(ROOT, 'patches');
const files = readdirSync(PATCHES).filter((f) => f.endsWith('.patch'));

/** `@scope+name+1.2.3.patch` → { name: '@scope/name', version: '1.2.3' } (patch-package's naming). */
function parse(file: string): { name: string; version: string } {
  const m = /^(.+)\+([^+]+)\.patch$/.exec(file);
  assert.ok(m, file);
  return { name: m[1].replace('+', '/'), version: m[2] };
}

describe('dependency patches', () => {
  it('covers yamux, xsalsa20, the peer store and records, and prom-client', () => {
    assert.deepEqual(files.map((f) => parse(f).name).sort(), [
      '@chainsafe/libp2p-yamux',
      '@libp2p/peer-record',
      '@libp2p/peer-store',
      'prom-client',
      'xsalsa20',
    ]);
  });

  for (const file of files) {
    const { name, version } = parse(file);
    it(`${name} is installed at ${version} with ${file} applied`, () => {
      const dir = join(ROOT, 'node_modules', name);
      const installed = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
      assert.equal(installed.version, version);
      // The patch reverses cleanly only where every hunk of it is in place.
      const strip = 2 + name.split('/').length;
      const r = spawnSync(
        'patch',
        ['-R', '--dry-run', '--force', `-p${strip}`, '-d', dir, '-i', join(PATCHES, file)],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(r.status, 0, `${file} is not applied to node_modules/${name}: ${r.stdout}${r.stderr}`);
    });

    it(`${file} has its upstream issue text, naming the bench`, () => {
      const md = join(PATCHES, file.replace(/\.patch$/, '.md'));
      assert.ok(existsSync(md), `${md} missing`);
      assert.match(readFileSync(md, 'utf8'), /bench\/patches\.ts/);
    });
  }

  it('run at install from postinstall with --error-on-fail, from a regular dependency', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
      dependencies: Record<string, string>;
    };
    assert.match(pkg.scripts.postinstall, /^patch-package .*--error-on-fail/);
    // A regular dependency: an install without dev dependencies applies them too.
    assert.ok(pkg.dependencies['patch-package']);
  });
});
