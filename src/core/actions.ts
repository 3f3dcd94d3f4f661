/**
 * The action registry: every operation a CLI, the API or a signed command can run is an action
 * (`mesh.peers`, `apps.deploy`, …) with a zod schema for its arguments, an access class for
 * authorisation, and a handler that may stream data frames before returning its result.
 * Subsystems define their actions; the composition root registers them.
 */

import { InvalidArgumentError, isPlexusError, toErrorBody, UnknownActionError } from './errors.ts';
import type { Frame } from './frames.ts';
import type * as z from './zod.ts';

/**
 * The one logger method the registry uses. Declared here rather than imported from
 * src/logging, so that core imports no other subsystem; a pino logger fits it.
 */
export interface ActionLogger {
  error(obj: object, msg: string): void;
}

/**
 * What an action does, for role checks: viewers `read`, operators `write`, `exec` and `admin` are
 * special; `shell` (interactive sessions, file copy) needs a grant's `shell` flag or the admin role.
 */
export type Access = 'read' | 'write' | 'exec' | 'shell' | 'admin';

/** Who is calling. Local control-socket callers are admins (the socket's 0600 mode is the authority). */
export interface Caller {
  /** `local` (control socket) or `operator` (signed command). */
  kind: 'local' | 'operator';
  /** Key id of the operator, or `local`. */
  kid: string;
  /** Role granted to the key. */
  role: 'admin' | 'operator' | 'viewer';
  /** Tenant the key is limited to, if any. */
  tenant?: string;
}

/** Passed to every handler. */
export interface ActionContext {
  caller: Caller;
  /** Aborted when the caller goes away or the agent stops. */
  signal: AbortSignal;
  /** Sends a data frame; resolves when the transport has room again (backpressure). */
  emit(data: unknown): Promise<void>;
  /** Frames the caller sends after the request (stdin for exec, upload chunks). */
  input: AsyncIterable<unknown>;
  /** The signed command's id, when the action runs for one (session audit, recordings). */
  commandId?: string;
}

/** One action. */
export interface ActionDef<S extends z.ZodType = z.ZodType> {
  /** Namespaced name, e.g. `apps.deploy`. */
  name: string;
  /** One line for help and audit. */
  describe: string;
  /** Access class used by role checks. */
  access: Access;
  /**
   * The access class of one invocation, when it depends on the arguments (a deploy that picks
   * the command it runs is `exec`); `access` when absent.
   */
  accessOf?(args: z.infer<S>): Access;
  /** Argument schema; validated before the handler runs. */
  args: S;
  /**
   * The tenant an invocation touches, for tenant-limited operators: the tenant of the object
   * (e.g. the app), `null` when the object exists and has none (it belongs to admins), undefined
   * when there is no such object.
   */
  tenantOf?(args: z.infer<S>): string | null | undefined;
  /**
   * The error a tenant-limited caller gets for an object it may not see, and for a missing one:
   * the action's own "no such object" error, so that it cannot tell the two apart. Undefined
   * when the invocation names no object, or none that exists and the action creates it.
   */
  hidden?(args: z.infer<S>): Error | undefined;
  /** Runs the action. Its return value becomes the `result` frame. */
  handler(args: z.infer<S>, ctx: ActionContext): Promise<unknown>;
}

/** Helper to define an action with inferred argument types. */
export function defineAction<S extends z.ZodType>(def: ActionDef<S>): ActionDef<S> {
  return def;
}

/** The registry of every action this agent serves. */
export class ActionRegistry {
  readonly #defs = new Map<string, ActionDef>();
  readonly #logger: ActionLogger | undefined;

  /** `logger` receives unexpected (non-domain) errors with their stacks. */
  constructor(init: { logger?: ActionLogger } = {}) {
    this.#logger = init.logger;
  }

  /** Adds actions; a duplicate name is a programming error. */
  register(...defs: ActionDef[]): void {
    for (const def of defs) {
      if (this.#defs.has(def.name)) throw new Error(`action ${def.name} registered twice`);
      this.#defs.set(def.name, def);
    }
  }

  /** Looks up an action. */
  get(name: string): ActionDef | undefined {
    return this.#defs.get(name);
  }

  /** Every registered action name, sorted. */
  names(): string[] {
    return [...this.#defs.keys()].sort();
  }

  /**
   * Validates `rawArgs` and runs the action, returning the final frame. Data frames go through
   * `ctx.emit`. Never throws: every failure becomes an error frame.
   */
  async run(name: string, rawArgs: unknown, ctx: ActionContext): Promise<Frame> {
    try {
      const def = this.#defs.get(name);
      if (!def) throw new UnknownActionError(name);
      const parsed = def.args.safeParse(rawArgs ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
        throw new InvalidArgumentError(name, `${where}${issue.message}`);
      }
      const result = await def.handler(parsed.data, ctx);
      return { type: 'result', result: result ?? null };
    } catch (err) {
      if (!isPlexusError(err)) this.#logger?.error({ err, action: name }, 'action failed unexpectedly');
      return { type: 'error', error: toErrorBody(err) };
    }
  }
}
