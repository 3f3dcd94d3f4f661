/**
 * node:http and node:https, reached without an ES import.
 *
 * An ES import of node:http, even a named one, makes Node read every one of its exports, and
 * three of them (WebSocket, CloseEvent, MessageEvent) are getters that load undici, Node's
 * fetch: ~3.5 MB of V8 heap and ~17 MB RSS in a bare process, which neither the agent nor the
 * CLI ever uses. `process.getBuiltinModule` hands over the exports object without reading it.
 * node:https brings TLS with it, which only an https URL needs, so it loads on first use.
 */
import type * as Http from 'node:http';
import type * as Https from 'node:https';

export const http: typeof Http = process.getBuiltinModule('node:http');

/** node:https, loaded on the first call. */
export function https(): typeof Https {
  return process.getBuiltinModule('node:https');
}
