/**
 * The TLS of data connections (docs/tunnels.md, data connections): TLS 1.3 from node:tls
 * (OpenSSL), keyed by a ticket as an external pre-shared key (RFC 8446 §4.2.11). The ticket's
 * 16-byte id is the PSK identity and its 32-byte secret the PSK; both came to the client over
 * the Noise-encrypted mesh stream, so only the two members know them. OpenSSL runs the key
 * schedule with an ephemeral X25519 exchange (psk_dhe_ke), so a leaked ticket does not expose a
 * recorded session. No certificates: the PSK authenticates both ends, which keeps a connection's
 * setup at one round trip and two X25519 operations.
 */
import type { ConnectionOptions, SecureContext } from 'node:tls';

/**
 * node:tls, loaded on first use: an agent that carries no tunnel never pays for it (its RSS is
 * the idle ceiling; test/unit/runtime/bundle.test.ts checks that an idle agent loads no TLS).
 */
export function tlsModule(): typeof import('node:tls') {
  return process.getBuiltinModule('node:tls');
}

/**
 * OpenSSL's PSK callbacks work for TLS 1.3 with a SHA-256 suite only; AES-128-GCM is the
 * fastest of those on CPUs with AES instructions (and 128-bit keys suffice here: the handshake
 * still derives them from a 256-bit PSK and X25519).
 */
const SUITE = 'TLS_AES_128_GCM_SHA256';

/** Options both ends share. */
const COMMON = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: SUITE } as const;

/**
 * High-water mark of a data connection's TLS socket, both ways (Node's default is 64 KiB, one
 * frame of a 64 KiB read): decrypted bytes wait up to this for a paused reader, and writes by
 * others than the tunnel's frame writer (frame-writer.ts, which keeps its own bound) queue up to
 * this. Bounded per connection like the default.
 */
export const TLS_HIGH_WATER_BYTES = 256 * 1024;

/** The server end's context (no certificate; each socket gets its own PSK callback). */
export function serverSecureContext(): SecureContext {
  return tlsModule().createSecureContext(COMMON);
}

/**
 * The client end's context, made once: building an OpenSSL context is most of a handshake's
 * CPU (tls.connect makes a new one per connection unless given one).
 */
let clientContext: SecureContext | undefined;

/** Options of the client end, for one ticket. */
export function clientTlsOptions(
  identity: string,
  psk: Buffer,
): ConnectionOptions & { highWaterMark: number } {
  clientContext ??= tlsModule().createSecureContext(COMMON);
  return {
    ...COMMON,
    highWaterMark: TLS_HIGH_WATER_BYTES,
    secureContext: clientContext,
    pskCallback: () => ({ identity, psk }),
    // There is no certificate to check: the server proved it holds the PSK.
    checkServerIdentity: () => undefined,
  };
}
