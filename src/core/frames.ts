/**
 * Result frames: how every action answers, over the control socket (NDJSON), over HTTP
 * (`application/x-ndjson`) and over the mesh command protocol. Kept free of imports so the CLI
 * can load it without pulling in the agent.
 */
import type { ErrorBody } from './errors.ts';

/** A chunk of streamed output (log lines, exec stdout, progress). */
export interface DataFrame {
  type: 'data';
  data: unknown;
}
/** The final value of a successful action. */
export interface ResultFrame {
  type: 'result';
  result: unknown;
}
/** The final error of a failed action. */
export interface ErrorFrame {
  type: 'error';
  error: ErrorBody;
}
/** Any frame. Exactly one `result` or `error` ends a stream. */
export type Frame = DataFrame | ResultFrame | ErrorFrame;

/** A request to run an action, the first line on the control socket. */
export interface ActionRequest {
  action: string;
  args?: Record<string, unknown>;
}

/** The largest single NDJSON line we accept from anyone (a request, an input frame). */
export const MAX_LINE_BYTES = 1024 * 1024;
