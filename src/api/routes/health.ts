/** `GET /health`: unauthenticated liveness for load balancers and monitors. */
import type { HttpApi } from '../http.ts';

/** Mounts /health. */
export function mountHealthRoutes(api: HttpApi, deps: { version: string; startedAt: number }): void {
  api.route('GET', '/health', () => ({
    status: 'ok',
    uptimeS: Math.round((Date.now() - deps.startedAt) / 1000),
    version: deps.version,
  }));
}
