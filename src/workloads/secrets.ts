/**
 * App secrets at rest: AES-256-GCM under DATA/keys/master.key, a random 96-bit nonce per value,
 * and `app \0 name` as additional authenticated data so that a ciphertext moved to another app or
 * variable fails to decrypt (docs/workloads.md). Plaintext exists only in memory on its way
 * into a child's environment or to `env ls --reveal`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SecretError } from './errors.ts';

/** A sealed value as stored. */
export interface Sealed {
  nonce: Buffer;
  value: Buffer;
  tag: Buffer;
}

/** Reads master.key (32 bytes), creating it (mode 0600) when a data dir predates it. */
export function loadMasterKey(path: string): Buffer {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, randomBytes(32), { mode: 0o600, flag: 'wx' });
  }
  const key = readFileSync(path);
  if (key.length !== 32) {
    throw new SecretError(
      'MASTER_KEY_INVALID',
      `${path} must hold exactly 32 bytes; restore it from a backup`,
    );
  }
  return key;
}

/** Encrypts and decrypts values bound to an app and a variable name. */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new SecretError('MASTER_KEY_INVALID', 'master key must be 32 bytes');
    this.#key = key;
  }

  /** Encrypts `plaintext` for `app`/`name` with a fresh random nonce. */
  seal(app: string, name: string, plaintext: string): Sealed {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(aad(app, name));
    const value = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { nonce, value, tag: cipher.getAuthTag() };
  }

  /** Decrypts a value sealed for `app`/`name`; tampering or a wrong key is a SecretError. */
  open(app: string, name: string, sealed: Sealed): string {
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, sealed.nonce);
      decipher.setAAD(aad(app, name));
      decipher.setAuthTag(sealed.tag);
      return Buffer.concat([decipher.update(sealed.value), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretError(
        'SECRET_UNREADABLE',
        `cannot decrypt ${name} of app '${app}': master.key changed or the database was tampered with`,
      );
    }
  }
}

function aad(app: string, name: string): Buffer {
  return Buffer.from(`${app}\0${name}`, 'utf8');
}
