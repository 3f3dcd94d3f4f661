/**
 * `/plexus/cmd/1.0.0`: carries a signed envelope from the node it arrived at to its target, over
 * a direct or a circuit-relayed connection. The relaying side writes the envelope and then any
 * input frames, then half-closes; the target writes signed reply frames until the final one.
 * Every message is one length-prefixed JSON frame. Only members may open the protocol, and the
 * relay learns nothing it could reuse: the envelope is bound to its target and its id is burnt.
 */
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Frame } from '../core/frames.ts';
import type { Logger } from '../logging/index.ts';
import { type PacedFrames, pacedFrames } from '../mesh/paced-frames.ts';
import {
  COMMAND_PROTOCOL,
  COMMAND_STREAM_READ_BUFFER_BYTES,
  ENVELOPE_TIMEOUT_MS,
  INPUT_IDLE_TIMEOUT_MS,
  MAX_ENVELOPE_BYTES,
  MAX_INPUT_FRAME_BYTES,
  MAX_REPLY_FRAME_BYTES,
  RELAY_DIAL_TIMEOUT_MS,
} from './constants.ts';
import {
  BadFrameJsonError,
  FrameTooLargeError,
  RelayFailedError,
  RelayTimeoutError,
  TargetUnreachableError,
} from './errors.ts';
import type { CommandService, FrameSink, RelayFn } from './service.ts';

/** The part of the mesh this protocol uses. */
export interface CommandMesh {
  libp2p: {
    handle(
      proto: string,
      handler: (stream: Stream, conn: Connection) => void | Promise<void>,
      opts: { runOnLimitedConnection: boolean },
    ): Promise<void>;
    unhandle(proto: string): Promise<void>;
    getConnections(peer: ReturnType<typeof peerIdFromString>): Connection[];
    dialProtocol(
      peer: ReturnType<typeof peerIdFromString>,
      proto: string,
      opts: { signal: AbortSignal; runOnLimitedConnection: boolean; negotiateFully?: boolean },
    ): Promise<Stream>;
  };
  membership: { isMember(peerId: string): boolean };
  resolve(nameOrPeer: string): { name: string; peerId: string };
}

type Lp = PacedFrames;

const isEof = (err: unknown) => (err as Error)?.name === 'UnexpectedEOFError';

async function readJson(lp: Lp, signal?: AbortSignal): Promise<unknown | undefined> {
  let buf: Uint8Array;
  try {
    buf = await lp.read({ signal });
  } catch (err) {
    if (isEof(err)) return undefined;
    const name = (err as Error).name;
    if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError')
      throw new FrameTooLargeError();
    if (name === 'AbortError' || name === 'TimeoutError') throw new RelayTimeoutError();
    throw new RelayFailedError(`command stream failed: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(Buffer.from(buf).toString('utf8'));
  } catch {
    throw new BadFrameJsonError();
  }
}

/** Input frames from a stream until the other side half-closes, with an idle deadline. */
async function* streamInput(lp: Lp): AsyncGenerator<unknown> {
  for (;;) {
    const frame = await readJson(lp, AbortSignal.timeout(INPUT_IDLE_TIMEOUT_MS));
    if (frame === undefined) return;
    yield frame;
  }
}

/** Serves the command protocol: the target side. */
export async function serveCommands(
  mesh: CommandMesh,
  commands: CommandService,
  logger: Logger,
): Promise<void> {
  await mesh.libp2p.handle(
    COMMAND_PROTOCOL,
    async (stream, conn) => {
      const from = conn.remotePeer.toString();
      if (!mesh.membership.isMember(from)) {
        stream.abort(new Error('not a member'));
        return;
      }
      const abort = new AbortController();
      stream.addEventListener('close', () => abort.abort(), { once: true });
      stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, COMMAND_STREAM_READ_BUFFER_BYTES);
      // Paced: input waits in the stream (yamux holds the writer back), not in an unbounded buffer.
      const lp = pacedFrames(stream, { maxDataLength: Math.max(MAX_ENVELOPE_BYTES, MAX_INPUT_FRAME_BYTES) });
      const sink: FrameSink = (frame) =>
        lp.write(Buffer.from(JSON.stringify(frame)), { signal: abort.signal });
      try {
        let raw: unknown;
        try {
          raw = await readJson(lp, AbortSignal.timeout(ENVELOPE_TIMEOUT_MS));
        } catch (err) {
          commands.refuseRequest(err, 'mesh', from);
          throw err;
        }
        await commands.handle(raw, streamInput(lp), sink, { via: 'mesh', signal: abort.signal, from });
        await stream.close({ signal: AbortSignal.timeout(ENVELOPE_TIMEOUT_MS) });
      } catch (err) {
        logger.debug({ err, peer: from }, 'command stream failed');
        stream.abort(err as Error);
      }
    },
    { runOnLimitedConnection: true },
  );
}

/** The relay function: passes an accepted envelope to its target and copies the replies. */
export function meshRelay(mesh: CommandMesh): RelayFn {
  return async (target, envelope, input, sink, signal) => {
    let stream: Stream;
    const opts = {
      signal: AbortSignal.any([signal, AbortSignal.timeout(RELAY_DIAL_TIMEOUT_MS)]),
      runOnLimitedConnection: true,
      // Send the protocol name with the envelope in one message: one round trip fewer.
      negotiateFully: false,
    };
    try {
      const peer = peerIdFromString(target);
      // The mesh keeps a connection to every member: open the stream on it (a direct one if there
      // is one) instead of going through the dialler, which costs a few ms per command.
      const open = mesh.libp2p.getConnections(peer).filter((c) => c.status === 'open');
      const conn = open.find((c) => !c.remoteAddr.toString().includes('/p2p-circuit')) ?? open[0];
      stream = conn
        ? await conn.newStream(COMMAND_PROTOCOL, opts)
        : await mesh.libp2p.dialProtocol(peer, COMMAND_PROTOCOL, opts);
    } catch (err) {
      throw new TargetUnreachableError((err as Error).message);
    }
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, COMMAND_STREAM_READ_BUFFER_BYTES);
    const lp = pacedFrames(stream, { maxDataLength: MAX_REPLY_FRAME_BYTES });
    const onAbort = () => stream.abort(new Error('caller went away'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await lp.write(Buffer.from(JSON.stringify(envelope)), { signal });
      // Input flows while replies come back (upload progress, exec output).
      let pumped = false;
      const pump = (async () => {
        for await (const frame of input) await lp.write(Buffer.from(JSON.stringify(frame)), { signal });
        await stream.close({ signal });
        pumped = true;
      })().catch((err) => {
        // The target may finish without reading all input; that is its answer, not a failure.
        if (!signal.aborted) stream.abort(err as Error);
      });
      for (;;) {
        const frame = (await readJson(lp, signal)) as Frame | undefined;
        if (frame === undefined)
          throw new RelayFailedError('the target closed the stream without a final frame');
        await sink(frame);
        if (frame.type === 'result' || frame.type === 'error') break;
      }
      // The target has answered; input it never read is dropped with the stream.
      if (!pumped) stream.abort(new Error('reply complete'));
      void pump;
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  };
}
