/**
 * Signed commands (docs/commands.md): the door check on the node an envelope arrives at, the
 * full verification on its target, and running the action with every reply frame signed by the
 * target's node key. Transports (HTTP, control socket, the mesh protocol) only move frames; every
 * decision is made here (who may run what: authorize.ts), and every refusal or acceptance is
 * written to the audit log.
 */

import type { ActionRegistry, Caller } from '../core/actions.ts';
import { isPlexusError, toErrorBody } from '../core/errors.ts';
import type { Frame } from '../core/frames.ts';
import type { Signer } from '../crypto/ed25519.ts';
import type { Logger } from '../logging/index.ts';
import type { OperatorKey } from '../mesh/index.ts';
import type { AuditLog, SeenIds } from './audit.ts';
import { authenticate, authorize } from './authorize.ts';
import { MAX_COMMANDS_IN_FLIGHT } from './constants.ts';
import { type CommandPayload, decodeEnvelope, type Envelope, signFrame } from './envelope.ts';
import {
  CommandsBusyError,
  ReplayError,
  UnknownCommandActionError,
  UnknownTargetError,
  WrongTargetError,
} from './errors.ts';
import { checkedInput } from './signed-input.ts';

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

/** Runs and relays signed commands. */
export class CommandService {
  readonly #c: CommandServiceComponents;
  #inFlight = 0;

  constructor(components: CommandServiceComponents) {
    this.#c = components;
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
      if (this.#inFlight > MAX_COMMANDS_IN_FLIGHT) throw new CommandsBusyError(MAX_COMMANDS_IN_FLIGHT);
      const key = authenticate((kid) => this.#c.lookupKey(kid), envelope, payload, now);
      if (payload.target !== self) {
        // A relay only passes on what it was asked to: the target never relays further.
        if (opts.via === 'mesh') throw new WrongTargetError();
        if (!this.#c.isMember(payload.target)) throw new UnknownTargetError(payload.target);
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
    if (!def) throw new UnknownCommandActionError(payload.action);
    authorize(key, def, payload.args);
    if (!this.#c.seen.claim(payload.id, payload.exp)) throw new ReplayError(payload.id);
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
