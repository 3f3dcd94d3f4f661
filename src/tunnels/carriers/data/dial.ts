/** Dialing a data listener: TCP, then TLS 1.3 keyed by a ticket (tls.ts). */
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { DATA_CONNECT_TIMEOUT_MS } from '../../constants.ts';
import { type DataConnection, dataConnection } from './splice.ts';
import type { DataTicket } from './tickets.ts';
import { clientTlsOptions, tlsModule } from './tls.ts';

/**
 * A TLS connection to a data listener, keyed by `ticket`, within DATA_CONNECT_TIMEOUT_MS. The
 * TCP socket is connected first and kept: a reset must go out on it (resetData). With `splice`,
 * the TCP connection goes to a relay's data listener, its preamble first (spliced/wire.ts), and
 * the TLS runs end to end with the member the relay joins it to, within `timeoutMs`.
 */
export function dial(
  host: string,
  port: number,
  ticket: DataTicket,
  signal: AbortSignal,
  splice?: { preamble: Buffer; timeoutMs: number },
): Promise<DataConnection> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host, port, allowHalfOpen: true, noDelay: true });
    let socket: TLSSocket | undefined;
    const fail = (err: Error) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket?.destroy();
      raw.destroy();
      reject(err);
    };
    const onAbort = () => fail(new Error('aborted'));
    const timer = setTimeout(
      () => fail(new Error(`connect to ${host}:${port} timed out`)),
      splice?.timeoutMs ?? DATA_CONNECT_TIMEOUT_MS,
    );
    signal.addEventListener('abort', onAbort, { once: true });
    raw.once('error', fail);
    raw.once('connect', () => {
      if (splice) raw.write(splice.preamble);
      const tls = tlsModule().connect({
        socket: raw,
        ...clientTlsOptions(ticket.id, Buffer.from(ticket.key, 'base64url')),
      });
      socket = tls;
      tls.once('error', fail);
      tls.once('secureConnect', () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        raw.off('error', fail);
        tls.off('error', fail);
        raw.on('error', () => {});
        tls.on('error', () => {});
        const data = dataConnection(tls, raw);
        if (splice) data.spliced = true;
        resolve(data);
      });
    });
  });
}
