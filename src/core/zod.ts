/**
 * The part of zod the sources use, re-exported by name; import it as
 * `import * as z from '../core/zod.ts'` and write `z.object(…)` as with zod's own `z`.
 *
 * Why not `import { z } from 'zod'`: that is zod's whole namespace, which a bundler cannot trim,
 * so the agent bundle carried all of zod (~580 KB: every locale, the JSON-schema converters) for
 * the ~120 KB it uses, and V8 keeps a bundle's whole source in memory (src/runtime/bundle.mjs).
 * Named, the rest stays out. Add a name here when a schema needs one.
 */

export type { infer, input, ZodType } from 'zod';
export {
  array,
  boolean,
  email,
  enum,
  literal,
  number,
  object,
  preprocess,
  record,
  strictObject,
  string,
  tuple,
  union,
  url,
} from 'zod';
