/** Errors of the config loader. Tests assert on `name` or `code`, never on the message. */
import { PlexusError } from '../core/errors.ts';

/** The config file is missing, unreadable or invalid. */
export class ConfigError extends PlexusError {
  override name = 'ConfigError';
  constructor(message: string) {
    super('CONFIG_INVALID', message, 'invalid');
  }
}
