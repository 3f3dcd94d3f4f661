/**
 * A GET signed like a command (issue 12): the envelope in `Authorization: Plexus …` must be
 * for this node, for the route's action and for exactly the args the query asks for. The command
 * service checks it as it checks any envelope (key, signature, times, role, replay), records it
 * in the audit log, and runs the action; the route answers the result as plain JSON.
 */
import type { ServerResponse } from 'node:http';
import type { CommandService } from '../commands/service.ts';
import type { Frame } from '../core/frames.ts';
import { envelopeOfAuthorization } from './authorization.ts';
import { ActionFailedError, UnauthenticatedError } from './errors.ts';
import type { ApiRequest } from './http.ts';

/** What a signed GET needs of the command service. */
export type SignedRequestCommands = Pick<CommandService, 'handle' | 'refuseRequest'>;

/**
 * The still unverified envelope of a signed GET, read before the query so that an unsigned
 * request learns nothing but how to sign; `hint` ends the 401's message.
 */
export function signedEnvelopeOf(req: ApiRequest, commands: SignedRequestCommands, hint: string): unknown {
  const header = req.headers.authorization;
  let envelope: unknown;
  try {
    envelope = envelopeOfAuthorization(header);
  } catch (err) {
    commands.refuseRequest(err, 'http', req.source);
    throw err;
  }
  if (envelope === undefined) throw new UnauthenticatedError(hint);
  return envelope;
}

/** Runs `action` with `args` on the authority of `envelope`; returns its result or throws its error. */
export async function runSignedRequest(
  commands: SignedRequestCommands,
  envelope: unknown,
  expect: { action: string; args: Record<string, unknown> },
  req: ApiRequest,
  res: ServerResponse,
): Promise<unknown> {
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  let final: Frame | undefined;
  await commands.handle(
    envelope,
    (async function* () {})(),
    async (frame) => {
      if (frame.type !== 'data') final = frame;
    },
    { via: 'http', signal: abort.signal, source: req.source, expect },
  );
  if (final?.type === 'error') throw new ActionFailedError(final.error);
  return final?.type === 'result' ? final.result : {};
}
