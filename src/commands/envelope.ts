/**
 * Command envelopes (docs/commands.md): `{v:1, kid, payload, sig}` where `payload` is the
 * base64url of JSON `{id, target, action, args, iat, exp}` and `sig` is Ed25519 over
 * `"plexus-cmd/1\n" + payload`. Reply frames are signed by the target's node key over
 * `"plexus-cmd-frame/1\n" + id + "\n" + seq + "\n" + JSON(frame)`, so a relaying node can drop a
 * reply but cannot alter, reorder or forge one. Pure node:crypto, no zod: the CLI signs and checks
 * with this file alone and starts fast.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Frame } from '../core/frames.ts';
import { b64u, fromB64u, type Signer, verifyEd25519 } from '../crypto/ed25519.ts';
import {
  BadEnvelopeError,
  BadSignatureError,
  CommandExpiredError,
  FutureDatedError,
  ReplyTamperedError,
  TtlTooLongError,
} from './errors.ts';

/** Domain of command signatures. */
export const COMMAND_DOMAIN = 'plexus-cmd/1';
/** Domain of reply-frame signatures. */
export const FRAME_DOMAIN = 'plexus-cmd-frame/1';
/** `iat` may differ from the verifier's clock by this much (docs/commands.md: ±60 s). */
export const MAX_CLOCK_SKEW_S = 60;
/** Longest allowed validity window `exp - iat` (docs/commands.md: 300 s). */
export const MAX_TTL_S = 300;
/** Default validity the CLI signs with: a minute covers slow relays, a short life limits theft. */
export const DEFAULT_TTL_S = 60;
/** An encoded payload bigger than this is refused before decoding (args are small; uploads stream). */
export const MAX_PAYLOAD_CHARS = 64 * 1024;

/** The envelope as it travels. */
export interface Envelope {
  v: 1;
  /** Key id of the signing operator key. */
  kid: string;
  /** base64url(JSON(CommandPayload)). */
  payload: string;
  /** base64url Ed25519 signature. */
  sig: string;
}

/** What an operator signs. */
export interface CommandPayload {
  /** Random unique id (replay protection). */
  id: string;
  /** Peer ID of the node that must run it. */
  target: string;
  action: string;
  args: Record<string, unknown>;
  /** Issued at, unix seconds. */
  iat: number;
  /** Expires at, unix seconds. */
  exp: number;
  /**
   * The input frames (uploads) the operator sends after the envelope: how many, and the sha256
   * (hex) over them, so a relay can neither swap, drop nor append uploaded bytes. Or
   * `{live: true}` for an interactive session (issue 16): every input frame is then signed on its
   * own by the operator key as it is typed (live-input.ts).
   */
  input?: InputDigest | LiveInput;
}

/** The payload's mark of a session whose input frames are each signed by the operator. */
export interface LiveInput {
  live: true;
}

/** A reply frame with the target's signature. */
export type SignedFrame = Frame & { seq: number; by: string; fsig: string };

/** Signs a command for `target`. */
export function signCommand(
  signer: Signer,
  cmd: {
    target: string;
    action: string;
    args?: Record<string, unknown>;
    ttlS?: number;
    input?: InputDigest | LiveInput;
  },
  now = Date.now(),
): { envelope: Envelope; payload: CommandPayload } {
  const iat = Math.floor(now / 1000);
  const payload: CommandPayload = {
    id: randomBytes(16).toString('base64url'),
    target: cmd.target,
    action: cmd.action,
    args: cmd.args ?? {},
    iat,
    exp: iat + (cmd.ttlS ?? DEFAULT_TTL_S),
  };
  if (cmd.input) payload.input = cmd.input;
  const p = b64u(JSON.stringify(payload));
  return { envelope: { v: 1, kid: signer.kid, payload: p, sig: b64u(signer.sign(sigBytes(p))) }, payload };
}

function sigBytes(payload: string): Buffer {
  return Buffer.from(`${COMMAND_DOMAIN}\n${payload}`, 'utf8');
}

/** Checks the envelope's shape and decodes its payload, without verifying the signature. */
export function decodeEnvelope(value: unknown): { envelope: Envelope; payload: CommandPayload } {
  const e = value as Envelope;
  if (
    typeof e !== 'object' ||
    e === null ||
    e.v !== 1 ||
    typeof e.kid !== 'string' ||
    !/^[A-Za-z0-9_-]{16}$/.test(e.kid) ||
    typeof e.payload !== 'string' ||
    e.payload.length > MAX_PAYLOAD_CHARS ||
    typeof e.sig !== 'string' ||
    e.sig.length > 128
  ) {
    throw new BadEnvelopeError('expected an envelope {v:1, kid, payload, sig}');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fromB64u(e.payload).toString('utf8'));
  } catch {
    throw new BadEnvelopeError('envelope payload is not base64url JSON');
  }
  const p = raw as CommandPayload;
  const isInt = (n: unknown) => Number.isSafeInteger(n) && (n as number) > 0;
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.id !== 'string' ||
    !/^[A-Za-z0-9_-]{16,64}$/.test(p.id) ||
    typeof p.target !== 'string' ||
    p.target.length > 128 ||
    typeof p.action !== 'string' ||
    !/^[a-z][a-z0-9.-]{0,63}$/.test(p.action) ||
    typeof p.args !== 'object' ||
    p.args === null ||
    Array.isArray(p.args) ||
    !isInt(p.iat) ||
    !isInt(p.exp) ||
    (p.input !== undefined && !isInputDigest(p.input) && !isLiveInput(p.input))
  ) {
    throw new BadEnvelopeError('envelope payload lacks id, target, action, args, iat or exp');
  }
  return {
    envelope: { v: 1, kid: e.kid, payload: e.payload, sig: e.sig },
    payload: {
      id: p.id,
      target: p.target,
      action: p.action,
      args: p.args,
      iat: p.iat,
      exp: p.exp,
      ...(p.input
        ? {
            input: isLiveInput(p.input)
              ? { live: true as const }
              : { frames: p.input.frames, sha256: p.input.sha256 },
          }
        : {}),
    },
  };
}

/** Verifies the envelope signature with the operator's public key. */
export function verifyEnvelopeSignature(envelope: Envelope, publicKey: Uint8Array): void {
  let sig: Buffer;
  try {
    sig = fromB64u(envelope.sig);
  } catch {
    sig = Buffer.alloc(0);
  }
  if (!verifyEd25519(publicKey, sigBytes(envelope.payload), sig)) {
    throw new BadSignatureError();
  }
}

/** Checks `iat`/`exp` against the clock: skew ±60 s, window ≤ 300 s, not expired. */
export function checkValidity(payload: CommandPayload, now = Date.now()): void {
  const t = now / 1000;
  if (payload.exp <= payload.iat || payload.exp - payload.iat > MAX_TTL_S)
    throw new TtlTooLongError(MAX_TTL_S);
  if (payload.iat > t + MAX_CLOCK_SKEW_S) throw new FutureDatedError();
  if (payload.iat < t - MAX_CLOCK_SKEW_S || payload.exp <= t) throw new CommandExpiredError();
}

/** The bytes a reply frame's signature covers. */
function frameBytes(id: string, seq: number, frame: Frame): Buffer {
  return Buffer.from(`${FRAME_DOMAIN}\n${id}\n${seq}\n${JSON.stringify(frame)}`, 'utf8');
}

/** Signs a reply frame as the target (`by` is its peer ID). */
export function signFrame(signer: Signer, by: string, id: string, seq: number, frame: Frame): SignedFrame {
  return { ...frame, seq, by, fsig: b64u(signer.sign(frameBytes(id, seq, frame))) };
}

/**
 * Checks a reply frame from `target` for command `id`: it must carry the next `seq` and a valid
 * signature by the target's key. Returns the frame without its signature fields.
 */
export function verifyFrame(
  targetKey: Uint8Array,
  target: string,
  id: string,
  seq: number,
  value: unknown,
): Frame {
  const f = value as SignedFrame;
  const { seq: s, by, fsig, ...frame } = f;
  let sig: Buffer;
  try {
    sig = fromB64u(typeof fsig === 'string' ? fsig : '');
  } catch {
    sig = Buffer.alloc(0);
  }
  if (by !== target || s !== seq || !verifyEd25519(targetKey, frameBytes(id, seq, frame as Frame), sig)) {
    throw new ReplyTamperedError(seq);
  }
  return frame as Frame;
}

/** What a command's signature says about its input frames. */
export interface InputDigest {
  /** Number of input frames. */
  frames: number;
  /** sha256 (hex) over `JSON.stringify(frame) + "\n"` of each frame, in order. */
  sha256: string;
}

/** True for `{live: true}` (exactly). */
export function isLiveInput(v: unknown): v is LiveInput {
  return typeof v === 'object' && v !== null && (v as LiveInput).live === true && Object.keys(v).length === 1;
}

function isInputDigest(v: unknown): v is InputDigest {
  const d = v as InputDigest;
  return (
    typeof d === 'object' &&
    d !== null &&
    Number.isSafeInteger(d.frames) &&
    d.frames > 0 &&
    typeof d.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(d.sha256)
  );
}

/** Running digest over input frames, as the signer and the target both compute it. */
export function inputHasher() {
  const h = createHash('sha256');
  let frames = 0;
  return {
    update(frame: unknown) {
      frames++;
      h.update(JSON.stringify(frame));
      h.update('\n');
    },
    /** The digest so far; call once. */
    digest: (): InputDigest => ({ frames, sha256: h.digest('hex') }),
  };
}
