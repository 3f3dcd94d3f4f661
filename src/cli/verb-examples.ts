/**
 * The examples at the end of each verb's --help (the CLI's conventions, issue 15). Verbs added
 * with their own `examples(…)` keep them; the others get theirs from this table, so a verb file
 * stays about what the verb does. test/integration/cli-conventions.test.ts checks that every verb
 * ends its help with 1 to 3 examples.
 */
import type { Command } from 'commander';
import { examples } from './examples.ts';

const EXAMPLES: Record<string, string[]> = {
  version: ['plexus version', 'plexus version --json'],
  ui: ['plexus ui', 'plexus --api http://10.0.0.5:7071 --key ops.key ui --no-open'],
  init: ['plexus init --name web1', 'plexus init --name web1 --listen /ip4/0.0.0.0/tcp/7070 --tags eu'],
  join: ['plexus join plx2.… --name web2', 'plexus join plx2.… --name edge1 --behind-nat'],
  status: ['plexus status', 'plexus status --json'],
  peers: ['plexus peers', 'plexus peers --json'],
  ping: ['plexus ping web2', 'plexus ping web2 -c 10'],
  revoke: ['plexus revoke web3', 'plexus revoke web3 --rotate'],
  deploy: [
    'plexus deploy hello --dir examples/hello',
    'plexus deploy api --url https://example.com/api.tar.gz --port 8080 --health http://:8080/health',
  ],
  rollback: ['plexus rollback hello', 'plexus rollback hello --to 20261205-120000-ab12'],
  releases: ['plexus releases hello'],
  apps: ['plexus apps', 'plexus --node web2 apps --json'],
  start: ['plexus start hello'],
  stop: ['plexus stop hello'],
  restart: ['plexus restart hello'],
  rm: ['plexus rm hello'],
  events: ['plexus events hello'],
  logs: [
    'plexus logs hello --since 10m',
    'plexus logs --system --json --since 10m --nostream',
    'plexus logs hello -f',
  ],
  env: ['plexus env set hello GREETING=hi', 'plexus env ls hello'],
  'env set': ['plexus env set hello GREETING=hi TOKEN=s3cret'],
  'env unset': ['plexus env unset hello GREETING'],
  'env ls': ['plexus env ls hello'],
  hook: ['plexus hook secret hello'],
  'hook secret': ['plexus hook secret hello'],
  operator: ['plexus operator keygen ci.key', 'plexus operator add --pub ci.key.pub --role operator'],
  'operator keygen': ['plexus operator keygen ci.key'],
  'operator use': ['plexus operator use ci.key --admin admin.pub'],
  'operator add': [
    'plexus operator add --pub ci.key.pub --role operator',
    'plexus operator add --pub dash.pub --role viewer --tenant shop',
  ],
  'operator ls': ['plexus operator ls'],
  'operator revoke': ['plexus operator revoke -- KID'],
  audit: ['plexus audit', 'plexus audit --json'],
  'rotate-swarm-key': ['plexus rotate-swarm-key'],
  exec: ['plexus exec web2 -- uptime', 'plexus exec web2 -- journalctl -n 20'],
  token: ['plexus token create --ttl 1h', 'plexus token ls'],
  'token create': ['plexus token create', 'plexus token create --ttl 7d --uses 5 --tags eu'],
  'token ls': ['plexus token ls'],
  'token revoke': ['plexus token revoke -- TOKENID'],
  top: ['plexus top'],
  edge: ['plexus edge install', 'plexus edge status'],
  'edge install': [
    'plexus edge install --email ops@example.com',
    'plexus edge install --internal-ca --https-port 8443 --http-port 8080',
  ],
  'edge status': ['plexus edge status', 'plexus --node web2 edge status --json'],
  'edge uninstall': ['plexus edge uninstall'],
  domain: ['plexus domain add shop shop.example.com', 'plexus domain ls'],
  'domain add': [
    'plexus domain add shop shop.example.com',
    'plexus --node web2 domain add api api.example.com',
  ],
  'domain ls': ['plexus domain ls', 'plexus domain ls --json'],
  'domain rm': ['plexus domain rm shop.example.com'],
  service: ['plexus service install redis', 'plexus service ls'],
  'service install': [
    'plexus service install redis',
    'plexus service install postgresql --for shop',
    'plexus --node web2 service install node --version 18',
  ],
  'service ls': ['plexus service ls', 'plexus service ls --json'],
  'service rm': ['plexus service rm redis', 'plexus service rm postgresql --purge'],
  expose: ['plexus expose db 5432'],
  unexpose: ['plexus unexpose db'],
  forward: ['plexus forward add 15432 web2:db', 'plexus forward ls'],
  'forward add': ['plexus forward add 15432 web2:db'],
  'forward ls': ['plexus forward ls'],
  'forward rm': ['plexus forward rm ID'],
  'audit sessions': ['plexus audit sessions', 'plexus audit sessions --json'],
  'audit play': ['plexus audit play SESSION-ID'],
  shell: ['plexus shell web2', 'plexus shell web2 -- top'],
  cp: ['plexus cp ./site.tar.gz web2:/tmp/', 'plexus cp -r web2:/var/log/nginx ./logs'],
  'ssh-proxy': ["ssh -o ProxyCommand='plexus ssh-proxy %h' web2"],
  'ssh-config': ['plexus ssh-config >> ~/.ssh/config'],
  release: [
    'plexus release keygen release.key',
    'plexus release sign --release-key release.key dist/SHA256SUMS',
  ],
};

/** True when the verb's own help text already ends with examples (commander's afterHelp listeners write it). */
function hasExamples(cmd: Command): boolean {
  let text = '';
  const write = (t: string) => {
    text += t;
  };
  for (const l of (cmd as unknown as import('node:events').EventEmitter).listeners('afterHelp'))
    (l as (ctx: unknown) => void)({ error: false, command: cmd, write });
  return text.includes('Examples:');
}

/** Adds the table's examples to every verb (nested ones too) that has none of its own. */
export function addVerbExamples(program: Command, path: string[] = []): void {
  for (const c of program.commands) {
    const p = [...path, c.name()];
    const lines = EXAMPLES[p.join(' ')];
    if (lines && !hasExamples(c)) c.addHelpText('after', examples(...lines));
    addVerbExamples(c, p);
  }
}
