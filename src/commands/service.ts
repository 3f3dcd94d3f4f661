/**
 * Signed commands (DESIGN.md, Commands): the door check on the node an envelope arrives at, the
 * full verification on its target, and running the action with every reply frame signed by the
 * target's node key. Transports (HTTP, control socket, the mesh protocol) only move frames; every
 * decision is made here, and every refusal or acceptance is written to the audit log.
 */

import type { ActionDef, ActionRegistry, Caller } from '../core/actions.ts';
import { isPlexusError, type PlexusError, toErrorBody } from '../core/errors.ts';
import type { Frame } from '../core/frames.ts';
import type { Signer } from '../crypto/ed25519.ts';
import type { Logger } from '../logging/index.ts';
import type { OperatorKey } from '../mesh/index.ts';
import type { AuditLog, SeenIds } from './audit.ts';
import { MAX_COMMANDS_IN_FLIGHT } from './constants.ts';
import {
  type CommandPayload,
  CommandRefusedError,
  checkValidity,
  decodeEnvelope,
  type Envelope,
  type InputDigest,
  inputHasher,
  signFrame,
  verifyEnvelopeSignature,
} from './envelope.ts';

/** Where a frame goes: the HTTP response, the control socket, or the mesh stream back to a relay. */
export type FrameSink = (frame: Frame) => Promise<void>;

/** How an envelope arrived. */
export type Via = 'http' | 'socket' | 'mesh';

/** Passes an accepted envelope on to another node and copies its reply frames into `sink`. */
export type RelayFn = (
  target: string,
  envelope: Envelope,
  input: AsyncIterable<unknown>,
  sink: FrameSink,
  signal: AbortSignal,
) => Promise<void>;

/** What the command service needs. */
export interface CommandServiceComponents {
  actions: ActionRegistry;
  /** Looks up an operator key (grants + the admin key). */
  lookupKey(kid: string): OperatorKey | undefined;
  audit: AuditLog;
  seen: SeenIds;
  /** This node's peer ID and node-key signer (reply frames are signed with it). */
  self: { peerId: string; signer: Signer };
  /** True if `peerId` is a live member (a relay destination). */
  isMember(peerId: string): boolean;
  relay: RelayFn;
  logger: Logger;
}

const refuse = (code: string, message: string, kind: PlexusError['kind']) =>
  new CommandRefusedError(code, message, kind);

/** Which roles may run which access class; `exec` is also open to grants with `exec: true`. */
export function authorize(key: OperatorKey, def: ActionDef, args: unknown): void {
  const { role } = key;
  const allowed =
    def.access === 'read' ||
    (def.access === 'write' && role !== 'viewer') ||
    (def.access === 'exec' && (role === 'admin' || (role === 'operator' && key.exec))) ||
    (def.access === 'admin' && role === 'admin');
  if (!allowed) {
    throw refuse(
      'FORBIDDEN_ROLE',
      `role '${role}' may not run ${def.name} (${def.access}); ask an admin for a wider grant`,
      'denied',
    );
  }
  if (key.tenant && role !== 'admin') {
    const parsed = def.args.safeParse(args ?? {});
    const tenant = parsed.success ? def.tenantOf?.(parsed.data) : undefined;
    // Reads: of the node (no tenant) or of this tenant's apps. Changes: only through actions that
    // are about an app (they have tenantOf), to an app of this tenant or to one that does not exist
    // yet (a deploy creates it in the caller's tenant); node-level changes are not for tenants.
    const allowed =
      def.access === 'read'
        ? tenant === undefined || tenant === key.tenant
        : def.tenantOf !== undefined && (tenant === undefined || tenant === key.tenant);
    if (!allowed) {
      throw refuse(
        'FORBIDDEN_TENANT',
        `this key is limited to tenant '${key.tenant}'; ${def.name} touches ${tenant ? `tenant '${tenant}'` : 'the node itself'}`,
        'denied',
      );
    }
  }
}

/** Runs and relays signed commands. */
export class CommandService {
  readonly #c: CommandServiceComponents;
  #inFlight = 0;

  constructor(components: CommandServiceComponents) {
    this.#c = components;
  }

  /** Checks the envelope's key and signature: shared by the door and the target. */
  #authenticate(envelope: Envelope, payload: CommandPayload, now: number): OperatorKey {
    const key = this.#c.lookupKey(envelope.kid);
    if (!key)
      throw refuse(
        'UNKNOWN_KEY',
        `key ${envelope.kid} is not an operator of this network`,
        'unauthenticated',
      );
    if (key.revoked) throw refuse('KEY_REVOKED', `key ${envelope.kid} was revoked`, 'unauthenticated');
    verifyEnvelopeSignature(envelope, key.publicKey);
    if (key.exp !== undefined && key.exp * 1000 <= now)
      throw refuse('KEY_EXPIRED', `the grant of key ${envelope.kid} has expired`, 'unauthenticated');
    checkValidity(payload, now);
    return key;
  }

  /**
   * Handles an envelope that arrived over HTTP or the control socket (`via`), or from a relay
   * over the mesh. Never throws: every outcome is frames in `sink` and an audit row.
   */
  async handle(
    raw: unknown,
    input: AsyncIterable<unknown>,
    sink: FrameSink,
    opts: { via: Via; signal: AbortSignal; from?: string },
  ): Promise<void> {
    const now = Date.now();
    let envelope: Envelope | undefined;
    let payload: CommandPayload | undefined;
    const self = this.#c.self.peerId;
    this.#inFlight++;
    try {
      ({ envelope, payload } = decodeEnvelope(raw));
      if (this.#inFlight > MAX_COMMANDS_IN_FLIGHT)
        throw refuse(
          'BUSY',
          `over ${MAX_COMMANDS_IN_FLIGHT} commands in flight on this node; retry shortly`,
          'unavailable',
        );
      const key = this.#authenticate(envelope, payload, now);
      if (payload.target !== self) {
        if (opts.via === 'mesh') {
          throw refuse('WRONG_TARGET', 'this command was signed for another node', 'denied');
        }
        if (!this.#c.isMember(payload.target)) {
          throw refuse(
            'UNKNOWN_TARGET',
            `target ${payload.target} is not a member of this network`,
            'not_found',
          );
        }
        this.#audit(envelope, payload, 'relayed', opts, null, null);
        await this.#c.relay(payload.target, envelope, input, sink, opts.signal);
        return;
      }
      await this.#execute(envelope, payload, key, input, sink, opts);
    } catch (err) {
      const body = toErrorBody(err);
      if (!isPlexusError(err)) this.#c.logger.error({ err }, 'command failed unexpectedly');
      else this.#c.logger.info({ code: body.code, kid: envelope?.kid, via: opts.via }, 'command refused');
      this.#audit(envelope, payload, 'refused', opts, body.code, body.message, raw);
      const frame: Frame = { type: 'error', error: body };
      // A refusal by the target is signed like any reply; one at the door is the door's own word.
      await sink(
        payload?.target === self ? signFrame(this.#c.self.signer, self, payload.id, 0, frame) : frame,
      ).catch(() => {});
    } finally {
      this.#inFlight--;
    }
  }

  async #execute(
    envelope: Envelope,
    payload: CommandPayload,
    key: OperatorKey,
    input: AsyncIterable<unknown>,
    sink: FrameSink,
    opts: { via: Via; signal: AbortSignal; from?: string },
  ): Promise<void> {
    const def = this.#c.actions.get(payload.action);
    if (!def) throw refuse('UNKNOWN_ACTION', `unknown action '${payload.action}'`, 'not_found');
    authorize(key, def, payload.args);
    if (!this.#c.seen.claim(payload.id, payload.exp))
      throw refuse('REPLAY', `command ${payload.id} was already received: replays are refused`, 'denied');
    const seq0 = this.#audit(envelope, payload, 'accepted', opts, null, null);
    const { signer, peerId } = this.#c.self;
    let seq = 0;
    const send = (frame: Frame) => sink(signFrame(signer, peerId, payload.id, seq++, frame));
    const caller: Caller = { kind: 'operator', kid: key.kid, role: key.role, tenant: key.tenant };
    const final = await this.#c.actions.run(payload.action, payload.args, {
      caller,
      signal: opts.signal,
      emit: (data) => send({ type: 'data', data }),
      input: checkedInput(input, payload.input),
    });
    this.#c.audit.finish(seq0, final.type === 'error' ? final.error.code : 'ok');
    // The caller may be gone by now; the command ran and its audit entry says how it ended.
    await send(final).catch((err) => this.#c.logger.debug({ err }, 'caller left before the result'));
  }

  #audit(
    envelope: Envelope | undefined,
    payload: CommandPayload | undefined,
    verdict: 'accepted' | 'refused' | 'relayed',
    opts: { via: Via; from?: string },
    code: string | null,
    detail: string | null,
    raw?: unknown,
  ): number {
    try {
      const rawKid = (raw as { kid?: unknown })?.kid;
      return this.#c.audit.record({
        id: payload?.id ?? null,
        kid: envelope?.kid ?? (typeof rawKid === 'string' ? rawKid.slice(0, 64) : null),
        action: payload?.action ?? null,
        target: payload?.target ?? null,
        verdict,
        code,
        detail: opts.from ? `${detail ? `${detail}; ` : ''}from ${opts.from}` : detail,
        via: opts.via,
      });
    } catch (err) {
      this.#c.logger.error({ err }, 'cannot write the audit log');
      return -1;
    }
  }

  /** Records a request refused before it even held an envelope (bad JSON, too large, too slow). */
  refuseRequest(err: unknown, via: Via): void {
    const body = toErrorBody(err);
    this.#audit(undefined, undefined, 'refused', { via }, body.code, body.message);
  }
}

/**
 * Passes input frames through, hashing them. When the signed payload names its input (count and
 * digest), each frame is handed on only once the next one has arrived, and the last one only
 * once the digest matches: an action never sees the end of its input (its own end marker, or
 * the end of the stream) unless the input is exactly what the operator signed, with nothing
 * swapped, dropped or appended. A command signed without input gets none: any frame is an
 * injection.
 */
async function* checkedInput(input: AsyncIterable<unknown>, expected: InputDigest | undefined) {
  const tampered = (why: string) => new CommandRefusedError('INPUT_TAMPERED', why, 'unauthenticated');
  if (expected === undefined) {
    for await (const _ of input) throw tampered('this command was signed without input');
    return;
  }
  const h = inputHasher();
  let n = 0;
  let held: { frame: unknown } | undefined;
  for await (const frame of input) {
    n++;
    h.update(frame);
    if (held) yield held.frame;
    if (n === expected.frames) {
      if (h.digest().sha256 !== expected.sha256)
        throw tampered('the uploaded input does not match the digest the operator signed');
      yield frame;
      // Anything after the signed frames is not the operator's: it is never read.
      return;
    }
    held = { frame };
  }
  throw tampered(`the input ended after ${n} of ${expected.frames} signed frames`);
}
