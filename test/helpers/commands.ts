/**
 * Helpers for signed-command tests: a command service built in-process, sign envelopes with a
 * key file, POST raw bodies to an agent's API, and read NDJSON frames back. Traffic goes only to
 * 127.0.0.1.
 */
import { request } from 'node:http';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { createHttpApi } from '../../src/api/http.ts';
import { mountCommandRoutes } from '../../src/api/routes/commands.ts';
import { AuditLog, SeenIds } from '../../src/commands/audit.ts';
import { signCommand } from '../../src/commands/envelope.ts';
import { commandMigrations } from '../../src/commands/migrations.ts';
import { CommandService, type RelayFn } from '../../src/commands/service.ts';
import type { ActionRegistry } from '../../src/core/actions.ts';
import { generateSigner, readKeyFile, type Signer } from '../../src/crypto/ed25519.ts';
import { Membership } from '../../src/mesh/membership.ts';
import { meshMigrations } from '../../src/mesh/migrations.ts';
import { peerIdOf } from '../../src/mesh/peer-ids.ts';
import { openStore } from '../../src/store/index.ts';

/**
 * A node's command service, as the agent builds it, on SQLite :memory: with a fresh node key:
 * `admin` is the network's admin key, operator grants go into `membership.operators`.
 */
export function commandNode(init: {
  admin: Signer;
  actions: ActionRegistry;
  isMember?: (peerId: string) => boolean;
  relay?: RelayFn;
}) {
  const db = openStore(':memory:', [...meshMigrations, ...commandMigrations]);
  const membership = new Membership(db, init.admin.publicKey);
  const node = generateSigner().signer;
  const self = peerIdOf(node.publicKey);
  const audit = new AuditLog(db);
  const service = new CommandService({
    actions: init.actions,
    lookupKey: (kid) => membership.operators.lookup(kid),
    audit,
    seen: new SeenIds(db),
    self: { peerId: self, signer: node },
    isMember: init.isMember ?? (() => false),
    relay:
      init.relay ??
      (async () => {
        throw new Error('this test node relays nothing');
      }),
    logger: pino({ level: 'silent' }),
  });
  return { membership, node, self, audit, service };
}

/**
 * `commandNode` behind a real HTTP API on 127.0.0.1 (an ephemeral port) with only the command
 * routes mounted; stopped when the test ends.
 */
export async function commandApi(t: TestContext, init: Parameters<typeof commandNode>[0]) {
  const node = commandNode(init);
  const api = createHttpApi(
    { listen: '127.0.0.1:0', maxBodyBytes: 64 * 1024 },
    { logger: pino({ level: 'silent' }) },
  );
  mountCommandRoutes(api, {
    commands: node.service,
    self: () => ({ name: 'n1', peerId: node.self, networkId: 'plx-0000000000000000', admission: null }),
  });
  await api.start();
  t.after(() => api.stop());
  return { ...node, port: api.address!.port };
}

/** A raw HTTP answer, with NDJSON frames parsed when the body is a stream of them. */
export interface RawReply {
  status: number;
  type: string;
  body: string;
  frames: { type: string; data?: unknown; result?: unknown; error?: { code: string; message: string } }[];
}

/** POSTs `body` (or a slow writer) to `url` and collects the reply. */
export function post(
  url: string,
  body: string | ((req: import('node:http').ClientRequest) => void),
  timeoutMs = 30_000,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      // A fresh connection per request: the server drops connections whose body it refused.
      { method: 'POST', agent: false, headers: { 'content-type': 'application/x-ndjson' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => {
          const type = String(res.headers['content-type'] ?? '');
          const frames = type.startsWith('application/x-ndjson')
            ? text
                .split('\n')
                .filter(Boolean)
                .map((l) => JSON.parse(l))
            : [];
          resolve({ status: res.statusCode ?? 0, type, body: text, frames });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (typeof body === 'string') req.end(body);
    else body(req);
  });
}

/** GETs JSON from `url`. */
export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  return (await res.json()) as T;
}

/** Signs a command with the key in `keyFile`. */
export function sign(
  keyFile: string,
  cmd: { target: string; action: string; args?: Record<string, unknown>; ttlS?: number },
  now = Date.now(),
) {
  return signCommand(readKeyFile(keyFile), cmd, now);
}

/** The last frame of a reply (the result or error). */
export function last(reply: RawReply) {
  return reply.frames.at(-1);
}
