/**
 * `POST /v1/sessions` and `POST /v1/sessions/input`: an interactive session (a terminal) for a
 * client that cannot stream a request body, the browser on the agent's /ui/ (docs/ui.md). A
 * browser streams a response over HTTP/1.1 but sends a request body only whole, so a session's
 * two directions travel apart: the signed `shell.open` envelope opens the session and its reply
 * frames stream back on that response, and the keys follow in batches on input POSTs naming the
 * command id. Nothing is weaker than on `/v1/commands`: the envelope goes through the same
 * checks, every input frame carries the operator's own signature bound to this command id and
 * its place, and a batch is checked at this door before anything is queued, so an input POST
 * cannot end or steer a session it was not signed for. The target checks every frame again.
 */
import type { ServerResponse } from 'node:http';
import { MAX_ENVELOPE_BYTES, MAX_INPUT_FRAME_BYTES } from '../../commands/constants.ts';
import { NotLiveInputError } from '../../commands/errors.ts';
import type { LiveInputGate } from '../../commands/live-input.ts';
import type { CommandService } from '../../commands/service.ts';
import { frameQueue } from '../../core/frame-queue.ts';
import {
  BadRequestError,
  SessionInputBusyError,
  SessionNotFoundError,
  TooManySessionsError,
} from '../errors.ts';
import type { ApiRequest, Router } from '../http.ts';
import { frameSink } from './commands.ts';

/** Sessions open through this door at once (each node runs at most 32 of its own). */
const MAX_OPEN_SESSIONS = 64;
/** Input frames in one POST: a page batches keys per animation frame, and a paste in chunks. */
const MAX_FRAMES_PER_POST = 64;
/** Input frames queued and not yet sent on: past it an input POST is refused until they drain. */
const MAX_PENDING_FRAMES = 256;

/** What the session routes need. */
export interface SessionRoutesDeps {
  commands: Pick<CommandService, 'handle' | 'openLive' | 'refuseRequest'>;
}

interface OpenSession {
  gate: LiveInputGate;
  queue: ReturnType<typeof frameQueue<unknown>>;
}

/** Mounts the two session routes; the open sessions live as long as their response. */
export function mountSessionRoutes(router: Router, deps: SessionRoutesDeps): void {
  const open = new Map<string, OpenSession>();
  router.route('POST', '/v1/sessions', (req, res) => openSession(req, res, deps.commands, open));
  router.route('POST', '/v1/sessions/input', (req) => takeInput(req, deps.commands, open));
}

async function openSession(
  req: ApiRequest,
  res: ServerResponse,
  commands: SessionRoutesDeps['commands'],
  open: Map<string, OpenSession>,
): Promise<void> {
  let envelope: unknown;
  let opened: { id: string; gate: LiveInputGate } | undefined;
  try {
    envelope = await req.json(MAX_ENVELOPE_BYTES);
    opened = commands.openLive(envelope);
  } catch (err) {
    // Any other refusal of the envelope is `handle`'s to make below, with its audit row.
    if (envelope === undefined || err instanceof NotLiveInputError) {
      commands.refuseRequest(err, 'http', req.source);
      throw err;
    }
  }
  const queue = frameQueue<unknown>();
  // A second open of a command id already open here gets no input: the target refuses it as a
  // replay (the id is claimed there), and the first session keeps its input.
  if (opened && open.has(opened.id)) opened = undefined;
  if (opened) {
    if (open.size >= MAX_OPEN_SESSIONS) throw new TooManySessionsError(MAX_OPEN_SESSIONS);
    open.set(opened.id, { gate: opened.gate, queue });
  } else queue.close();
  const abort = new AbortController();
  // The page closing the response is how a session is left: the node hangs it up.
  res.on('close', () => {
    abort.abort();
    queue.close();
  });
  try {
    await commands.handle(envelope, queue, frameSink(res), {
      via: 'http',
      signal: abort.signal,
      source: req.source,
    });
  } finally {
    queue.close();
    if (opened && open.get(opened.id)?.queue === queue) open.delete(opened.id);
  }
  res.end();
}

async function takeInput(
  req: ApiRequest,
  commands: SessionRoutesDeps['commands'],
  open: Map<string, OpenSession>,
): Promise<{ next: number }> {
  try {
    const body = await req.json<{ id?: unknown; frames?: unknown }>(MAX_INPUT_FRAME_BYTES);
    const frames = body?.frames;
    if (
      typeof body?.id !== 'string' ||
      !Array.isArray(frames) ||
      frames.length === 0 ||
      frames.length > MAX_FRAMES_PER_POST
    )
      throw new BadRequestError(
        `send {id, frames}: a session's command id and 1 to ${MAX_FRAMES_PER_POST} signed input frames`,
      );
    const session = open.get(body.id);
    if (!session) throw new SessionNotFoundError();
    if (session.queue.size + frames.length > MAX_PENDING_FRAMES) throw new SessionInputBusyError();
    // All or nothing: a refused batch queues no frame and leaves the session as it was.
    for (const frame of session.gate.admit(frames)) session.queue.push(frame);
    return { next: session.gate.next };
  } catch (err) {
    // A forged or misplaced frame is a refused command's input: it goes to the audit log. Input
    // that only came too fast is not a refusal of anything.
    if (!(err instanceof SessionInputBusyError)) commands.refuseRequest(err, 'http', req.source);
    throw err;
  }
}
