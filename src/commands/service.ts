/**
 * Signed commands (docs/commands.md): the door check on the node an envelope arrives at, the
 * full verification on its target, and running the action with every reply frame signed by the
 * target's node key. Transports (HTTP, control socket, the mesh protocol) only move frames; every
 * decision is made here (who may run what: authorize.ts), and every refusal or acceptance is
 * written to the audit log.
 */

import { isDeepStrictEqual } from 'node:util';
import type { ActionRegistry, Caller } from '../core/actions.ts';
import { isPlexusError, toErrorBody } from '../core/errors.ts';
import type { Frame } from '../core/frames.ts';
import type { Signer } from '../crypto/ed25519.ts';
import type { Logger } from '../logging/index.ts';
import type { OperatorKey } from '../mesh/index.ts';
import type { AuditLog, SeenIds } from './audit.ts';
import { authenticate, authorize } from './authorize.ts';
import { MAX_COMMANDS_IN_FLIGHT } from './constants.ts';
import { type CommandPayload, decodeEnvelope, type Envelope, isLiveInput, signFrame } from './envelope.ts';
import {
  CommandsBusyError,
  NotLiveInputError,
  ReplayError,
  RequestMismatchError,
  UnknownCommandActionError,
  UnknownTargetError,
  WrongTargetError,
} from './errors.ts';
import { LiveInputGate, verifiedLiveInput } from './live-input.ts';
import { checkedInput } from './signed-input.ts';

/** Where a frame goes: the HTTP response, the control socket, or the mesh stream back to a relay. */
export type FrameSink = (frame: Frame) => Promise<void>;

/** How an envelope arrived. */
export type Via = 'http' | 'socket' | 'mesh';

/** How one envelope arrived, and what its transport expects of it. */
export interface HandleOptions {
  via: Via;
  signal: AbortSignal;
  /** The relaying peer, for `via: 'mesh'`. */
  from?: string;
  /**
   * Who sent it, for the audit log and refusal folding: the remote address over HTTP. Default:
   * the relaying peer over the mesh, `socket` over the control socket.
   */
  source?: string;
  /**
   * A request that carries its envelope as a credential (a signed GET) names what it asks for:
   * the envelope must then be for this node, this action and exactly these args, and is never
   * relayed (REQUEST_MISMATCH, WRONG_TARGET otherwise).
   */
  expect?: { action: string; args: Record<string, unknown> };
}

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
    opts: HandleOptions,
  ): Promise<void> {
    const now = Date.now();
    let envelope: Envelope | undefined;
    let payload: CommandPayload | undefined;
    let verifiedKid: string | undefined;
    const self = this.#c.self.peerId;
    this.#inFlight++;
    try {
      ({ envelope, payload } = decodeEnvelope(raw));
      if (this.#inFlight > MAX_COMMANDS_IN_FLIGHT) throw new CommandsBusyError(MAX_COMMANDS_IN_FLIGHT);
      const key = authenticate((kid) => this.#c.lookupKey(kid), envelope, payload, now);
      verifiedKid = key.kid;
      if (opts.expect) checkExpected(payload, self, opts.expect);
      if (payload.target !== self) {
        // A relay only passes on what it was asked to: the target never relays further.
        if (opts.via === 'mesh') throw new WrongTargetError();
        if (!this.#c.isMember(payload.target)) throw new UnknownTargetError(payload.target);
        this.#record(envelope, payload, 'relayed', opts);
        await this.#c.relay(payload.target, envelope, input, sink, opts.signal);
        return;
      }
      await this.#execute(envelope, payload, key, input, sink, opts);
    } catch (err) {
      const body = toErrorBody(err);
      const { folded } = this.#refuse(opts, body, { envelope, payload, raw, verifiedKid });
      if (!isPlexusError(err)) this.#c.logger.error({ err }, 'command failed unexpectedly');
      // One line per audit row: a flood folded into one row does not flood the log either.
      else if (!folded)
        this.#c.logger.info({ code: body.code, kid: envelope?.kid, via: opts.via }, 'command refused');
      const frame: Frame = { type: 'error', error: body };
      // A refusal by the target is signed like any reply; one at the door is the door's own word.
      await sink(
        payload?.target === self ? signFrame(this.#c.self.signer, self, payload.id, 0, frame) : frame,
      ).catch(() => {});
    } finally {
      this.#inFlight--;
    }
  }

  /**
   * For a transport that carries a session's input apart from its envelope (the agent's
   * /v1/sessions): the command id, and the gate its input frames pass at this door, once the
   * envelope is authenticated and declares live input. Throws what `handle` would refuse it
   * with (and `handle` then records the refusal); claims nothing, so the target still refuses
   * a replay.
   */
  openLive(raw: unknown): { id: string; gate: LiveInputGate } {
    const { envelope, payload } = decodeEnvelope(raw);
    const key = authenticate((kid) => this.#c.lookupKey(kid), envelope, payload, Date.now());
    if (!isLiveInput(payload.input)) throw new NotLiveInputError(payload.action);
    return { id: payload.id, gate: new LiveInputGate(key.publicKey, payload.id) };
  }

  async #execute(
    envelope: Envelope,
    payload: CommandPayload,
    key: OperatorKey,
    input: AsyncIterable<unknown>,
    sink: FrameSink,
    opts: HandleOptions,
  ): Promise<void> {
    const def = this.#c.actions.get(payload.action);
    if (!def) throw new UnknownCommandActionError(payload.action);
    authorize(key, def, payload.args);
    if (!this.#c.seen.claim(payload.id, payload.exp)) throw new ReplayError(payload.id);
    const seq0 = this.#record(envelope, payload, 'accepted', opts);
    const { signer, peerId } = this.#c.self;
    let seq = 0;
    const send = (frame: Frame) => sink(signFrame(signer, peerId, payload.id, seq++, frame));
    const caller: Caller = { kind: 'operator', kid: key.kid, role: key.role, tenant: key.tenant };
    const final = await this.#c.actions.run(payload.action, payload.args, {
      caller,
      signal: opts.signal,
      // Async, so that a sink that throws at once (its stream is closed) rejects the action's
      // await instead of throwing through a caller that did not expect it.
      emit: async (data) => send({ type: 'data', data }),
      // An interactive session's frames are each signed by the operator; an upload's digest is.
      input: isLiveInput(payload.input)
        ? verifiedLiveInput(input, key.publicKey, payload.id)
        : checkedInput(input, payload.input),
      commandId: payload.id,
    });
    this.#c.audit.finish(seq0, final.type === 'error' ? final.error.code : 'ok');
    // The caller may be gone by now; the command ran and its audit entry says how it ended.
    await send(final).catch((err) => this.#c.logger.debug({ err }, 'caller left before the result'));
  }

  /** Writes an accepted or relayed entry; returns its seq (-1 when the log cannot be written). */
  #record(
    envelope: Envelope,
    payload: CommandPayload,
    verdict: 'accepted' | 'relayed',
    opts: Pick<HandleOptions, 'via' | 'from' | 'source'>,
  ): number {
    try {
      return this.#c.audit.record({
        id: payload.id,
        kid: envelope.kid,
        action: payload.action,
        target: payload.target,
        verdict,
        code: null,
        detail: opts.from ? `from ${opts.from}` : null,
        via: opts.via,
        source: sourceOf(opts),
      });
    } catch (err) {
      this.#c.logger.error({ err }, 'cannot write the audit log');
      return -1;
    }
  }

  /** Writes (or folds) a refusal; `folded` when it was counted into an earlier row. */
  #refuse(
    opts: Pick<HandleOptions, 'via' | 'from' | 'source'>,
    error: { code: string; message: string },
    seen: { envelope?: Envelope; payload?: CommandPayload; raw?: unknown; verifiedKid?: string } = {},
  ): { folded: boolean } {
    const { envelope, payload, raw, verifiedKid } = seen;
    try {
      const rawKid = (raw as { kid?: unknown })?.kid;
      return this.#c.audit.refuse({
        id: payload?.id ?? null,
        kid: envelope?.kid ?? (typeof rawKid === 'string' ? rawKid.slice(0, 64) : null),
        action: payload?.action ?? null,
        target: payload?.target ?? null,
        code: error.code,
        detail: opts.from ? `${error.message}; from ${opts.from}` : error.message,
        via: opts.via,
        source: sourceOf(opts),
        verifiedKid,
      });
    } catch (err) {
      this.#c.logger.error({ err }, 'cannot write the audit log');
      return { folded: false };
    }
  }

  /** Records a request refused before it even held an envelope (bad JSON, too large, too slow). */
  refuseRequest(err: unknown, via: Via, source?: string): void {
    const body = toErrorBody(err);
    this.#refuse({ via, source }, body);
  }
}

/** Who sent an envelope, as the audit log names it. */
function sourceOf(opts: Pick<HandleOptions, 'via' | 'from' | 'source'>): string {
  return opts.source ?? opts.from ?? (opts.via === 'socket' ? 'socket' : 'unknown');
}

/** A signed request's envelope must ask for exactly what the request does, on this node. */
function checkExpected(
  payload: CommandPayload,
  self: string,
  expect: NonNullable<HandleOptions['expect']>,
): void {
  if (payload.target !== self) throw new WrongTargetError();
  if (payload.action !== expect.action || !isDeepStrictEqual(payload.args, expect.args))
    throw new RequestMismatchError(expect.action);
}
