/** Bytes as the input frames of an upload (`apps.deploy`): base64 chunks, then `{end: true}`. */

/**
 * Yields `source` cut into `chunkBytes` pieces as `{chunk}` frames, then `{end: true}`; throws
 * `tooLarge()` once more than `maxBytes` came in.
 */
export async function* uploadFrames(
  source: AsyncIterable<Buffer>,
  chunkBytes: number,
  limit?: { maxBytes: number; tooLarge(): Error },
): AsyncGenerator<unknown> {
  let buf: Buffer = Buffer.alloc(0);
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (limit && total > limit.maxBytes) throw limit.tooLarge();
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= chunkBytes) {
      yield { chunk: buf.subarray(0, chunkBytes).toString('base64') };
      buf = buf.subarray(chunkBytes);
    }
  }
  if (buf.length) yield { chunk: buf.toString('base64') };
  yield { end: true };
}
