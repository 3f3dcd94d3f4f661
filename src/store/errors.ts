/** Errors of the store. Tests assert on `name` or `code`, never on the message. */

/**
 * Raised when the database cannot be opened or migrated. A plain Error with a `code`, not a
 * PlexusError (it has no `kind`): the CLI reports it as an unexpected error, as it always has.
 */
export class StoreError extends Error {
  override name = 'StoreError';
  code = 'STORE_FAILED';
}
