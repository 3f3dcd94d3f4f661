/** `GET /health`: unauthenticated liveness for load balancers and monitors. */
import type { Router } from '../http.ts';

/** Mounts /health. */
export function mountHealthRoutes(router: Router, deps: { version: string; startedAt: number }): void {
  router.route('GET', '/health', () => ({
    status: 'ok',
    uptimeS: Math.round((Date.now() - deps.startedAt) / 1000),
    version: deps.version,
  }));
}
