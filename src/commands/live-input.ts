/**
 * The input of an interactive session (issue 16: `plexus shell`, `exec -i/-t`, `cp`). Its frames
 * cannot be digested in advance like an upload's, since the operator types them as the session
 * runs, so each one is signed on its own with the operator key, over
 * `"plexus-cmd-input/1\n" + id + "\n" + seq + "\n" + JSON(frame)`: bound to the one command id
 * (whose envelope is accepted once) and to its place in the session. A relaying node can drop
 * input, which ends the session, but it cannot inject, alter, reorder or replay a keystroke.
 * Pure node:crypto: the CLI signs with this file.
 */
import { b64u, fromB64u, type Signer, verifyEd25519 } from '../crypto/ed25519.ts';
import { InputTamperedError } from './errors.ts';

/** Domain of live input signatures. */
export const LIVE_INPUT_DOMAIN = 'plexus-cmd-input/1';

/** A live input frame as it travels: the frame's fields, its place and the operator's signature. */
export type SignedInput = Record<string, unknown> & { iseq: number; isig: string };

function inputBytes(id: string, seq: number, frame: Record<string, unknown>): Buffer {
  return Buffer.from(`${LIVE_INPUT_DOMAIN}\n${id}\n${seq}\n${JSON.stringify(frame)}`, 'utf8');
}

/** Signs the `seq`-th input frame of command `id` (the CLI does, as the operator types). */
export function signInput(
  signer: Signer,
  id: string,
  seq: number,
  frame: Record<string, unknown>,
): SignedInput {
  return { ...frame, iseq: seq, isig: b64u(signer.sign(inputBytes(id, seq, frame))) };
}

/** The frame inside a signed input frame, if `raw` is the `seq`-th one signed for command `id`. */
function checkedFrame(
  raw: unknown,
  publicKey: Uint8Array,
  id: string,
  seq: number,
): Record<string, unknown> | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const { iseq, isig, ...frame } = raw as SignedInput;
  let sig: Buffer;
  try {
    sig = fromB64u(typeof isig === 'string' && isig.length <= 128 ? isig : '');
  } catch {
    sig = Buffer.alloc(0);
  }
  return verifyEd25519(publicKey, inputBytes(id, seq, frame), sig) ? frame : undefined;
}

/**
 * Passes on the input frames of a live session once each is checked: the next `iseq`, and a
 * signature by the operator key that signed the envelope. The first frame that fails ends the
 * input with INPUT_TAMPERED; the action sees only what the operator sent, in order.
 */
export async function* verifiedLiveInput(
  input: AsyncIterable<unknown>,
  publicKey: Uint8Array,
  id: string,
): AsyncGenerator<Record<string, unknown>> {
  let seq = 0;
  for await (const raw of input) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new InputTamperedError(`input frame ${seq} is not an object`);
    const frame = checkedFrame(raw, publicKey, id, seq);
    if (!frame)
      throw new InputTamperedError(`input frame ${seq} is not signed by the operator key for this session`);
    seq++;
    yield frame;
  }
}

/**
 * The door check of a session whose input arrives in batches on separate requests (the agent's
 * `/v1/sessions/input`, docs/ui.md): it refuses, before anything is queued, a batch with a frame
 * not signed for this session by its operator, or one that skips ahead; a refused batch changes
 * nothing, so a stranger who learns the session id cannot end it. A copy of a frame already
 * passed (a browser resends a POST whose connection closed under it) is recognised by its valid
 * signature for an earlier place and dropped: it is never passed on twice. The target checks
 * every frame again (verifiedLiveInput).
 */
export class LiveInputGate {
  readonly #publicKey: Uint8Array;
  readonly #id: string;
  #next = 0;

  constructor(publicKey: Uint8Array, id: string) {
    this.#publicKey = publicKey;
    this.#id = id;
  }

  /** The place the next new frame must have. */
  get next(): number {
    return this.#next;
  }

  /** The frames of `batch` not passed before, as they were signed; throws INPUT_TAMPERED. */
  admit(batch: unknown[]): unknown[] {
    const fresh: unknown[] = [];
    let next = this.#next;
    for (const raw of batch) {
      const seq = (raw as SignedInput | null)?.iseq as number;
      if (!Number.isSafeInteger(seq) || seq < 0 || seq > next)
        throw new InputTamperedError(
          `input frame ${String(seq)} is not the next one (${next}) of this session`,
        );
      if (!checkedFrame(raw, this.#publicKey, this.#id, seq))
        throw new InputTamperedError(`input frame ${seq} is not signed by the operator key for this session`);
      if (seq === next) {
        fresh.push(raw);
        next++;
      }
    }
    this.#next = next;
    return fresh;
  }
}
