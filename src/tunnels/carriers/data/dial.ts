/** Dialing a data listener: TCP, then TLS 1.3 keyed by a ticket (tls.ts). */
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { DATA_CONNECT_TIMEOUT_MS } from '../../constants.ts';
import { type DataConnection, dataConnection } from './splice.ts';
import type { DataTicket } from './tickets.ts';
import { clientTlsOptions, tlsModule } from './tls.ts';

/**
 * A TLS connection to a data listener, keyed by `ticket`, within DATA_CONNECT_TIMEOUT_MS. The
 * TCP socket is connected first and kept: a reset must go out on it (resetData).
 */
export function dial(
  host: string,
  port: number,
  ticket: DataTicket,
  signal: AbortSignal,
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
      DATA_CONNECT_TIMEOUT_MS,
    );
    signal.addEventListener('abort', onAbort, { once: true });
    raw.once('error', fail);
    raw.once('connect', () => {
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
        resolve(dataConnection(tls, raw));
      });
    });
  });
}
