/**
 * `POST /v1/hooks/:app`: webhook deploys (issue 3). Authentication is the app's HMAC secret, not
 * an operator key, so CI systems can call it with nothing but the secret. Verification, replay
 * protection and the deploy itself live in the workload manager; this file only speaks HTTP:
 * 202 once accepted (the deploy runs on, its outcome goes to the events log), 401 on any
 * signature, timestamp or replay problem.
 */
import type { Workloads } from '../../workloads/index.ts';
import { type Router, sendJson } from '../http.ts';

/** A webhook body is `{url, sha256?}`: a few hundred bytes. */
const MAX_HOOK_BODY_BYTES = 16 * 1024;

/** What the webhook route needs: the workload manager's webhook check and deploy. */
export interface HookRoutesDeps {
  workloads: Pick<Workloads, 'acceptWebhook'>;
}

/** Mounts the webhook route. */
export function mountHookRoutes(router: Router, deps: HookRoutesDeps): void {
  router.route('POST', '/v1/hooks/:app', async (req, res) => {
    const body = await req.body(MAX_HOOK_BODY_BYTES);
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const result = deps.workloads.acceptWebhook(req.params.app, {
      timestamp: header('x-plexus-timestamp'),
      signature: header('x-plexus-signature'),
      body,
    });
    sendJson(res, 202, result);
  });
}
