import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/index.ts';
import { codeOf } from '../../helpers/errors.ts';

function withFile(text: string, fn: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-cfg-'));
  try {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, text);
    fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('config', () => {
  it('fills defaults and applies PLEXUS_SECTION__KEY overrides', () => {
    withFile('node:\n  name: web-1\n', (path) => {
      const c = loadConfig(path, {
        PLEXUS_SOCKS__LISTEN: 'off',
        PLEXUS_TELEMETRY__INTERVAL_S: '2',
        PLEXUS_MESH__LISTEN: '["/ip4/127.0.0.1/tcp/9000"]',
      });
      assert.equal(c.node.name, 'web-1');
      assert.equal(c.socks.listen, 'off');
      assert.equal(c.telemetry.intervalS, 2);
      assert.deepEqual(c.mesh.listen, ['/ip4/127.0.0.1/tcp/9000']);
      assert.equal(c.api.listen, '127.0.0.1:7071');
    });
  });

  it('refuses malformed files with CONFIG_INVALID', () => {
    const bad = [
      'node: [unclosed',
      '- a list',
      'node:\n  name: Not_A_Label\n',
      'node:\n  name: a\nbogus: 1\n',
      'node:\n  name: a\napi:\n  listen: nowhere\n',
    ];
    for (const text of bad)
      withFile(text, (path) =>
        assert.equal(
          codeOf(() => loadConfig(path, {})),
          'CONFIG_INVALID',
          text,
        ),
      );
    withFile('node:\n  name: a\n', (path) =>
      assert.equal(
        codeOf(() => loadConfig(path, { PLEXUS_API__NOPE: '1' })),
        'CONFIG_INVALID',
      ),
    );
    withFile(`node:\n  name: a\n#${'x'.repeat(300_000)}\n`, (path) =>
      assert.equal(
        codeOf(() => loadConfig(path, {})),
        'CONFIG_INVALID',
      ),
    );
  });

  it('api.hosts and api.metricsToken: names normalised, a list or JSON from the environment, bad values refused', () => {
    withFile('node:\n  name: a\napi:\n  hosts: [Plexus.Example.COM., hooks.example.com]\n', (path) => {
      const c = loadConfig(path, {});
      assert.deepEqual(c.api.hosts, ['plexus.example.com', 'hooks.example.com']);
      assert.equal(c.api.metricsToken, undefined);
    });
    withFile('node:\n  name: a\n', (path) => {
      assert.deepEqual(loadConfig(path, {}).api.hosts, []);
      const env = loadConfig(path, {
        PLEXUS_API__HOSTS: 'a.example, b.example',
        PLEXUS_API__METRICS_TOKEN: 'prom-0123456789abcdef',
      });
      assert.deepEqual(env.api.hosts, ['a.example', 'b.example']);
      assert.equal(env.api.metricsToken, 'prom-0123456789abcdef');
      assert.deepEqual(loadConfig(path, { PLEXUS_API__HOSTS: '["c.example"]' }).api.hosts, ['c.example']);
      for (const env of [
        { PLEXUS_API__HOSTS: 'evil example' },
        { PLEXUS_API__HOSTS: 'a..example' },
        { PLEXUS_API__HOSTS: `${'a'.repeat(64)}.example` },
        { PLEXUS_API__HOSTS: JSON.stringify(Array.from({ length: 33 }, (_, i) => `h${i}.example`)) },
        { PLEXUS_API__METRICS_TOKEN: 'short' },
        { PLEXUS_API__METRICS_TOKEN: 'has a space in it, 0123456789' },
      ])
        assert.equal(
          codeOf(() => loadConfig(path, env)),
          'CONFIG_INVALID',
          JSON.stringify(env),
        );
    });
  });
});
