/**
 * The input frames of a command (uploads) checked against what the operator signed, so that a
 * relaying node can neither swap, drop nor append uploaded bytes.
 */
import { type InputDigest, inputHasher } from './envelope.ts';
import { InputTamperedError } from './errors.ts';

/**
 * Passes input frames through, hashing them. When the signed payload names its input (count and
 * digest), each frame is handed on only once the next one has arrived, and the last one only
 * once the digest matches: an action never sees the end of its input (its own end marker, or
 * the end of the stream) unless the input is exactly what the operator signed, with nothing
 * swapped, dropped or appended. A command signed without input gets none: any frame is an
 * injection.
 */
export async function* checkedInput(
  input: AsyncIterable<unknown>,
  expected: InputDigest | undefined,
): AsyncGenerator<unknown> {
  if (expected === undefined) {
    for await (const _ of input) throw new InputTamperedError('this command was signed without input');
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
        throw new InputTamperedError('the uploaded input does not match the digest the operator signed');
      yield frame;
      // Anything after the signed frames is not the operator's: it is never read.
      return;
    }
    held = { frame };
  }
  throw new InputTamperedError(`the input ended after ${n} of ${expected.frames} signed frames`);
}
