/**
 * The CA's web dashboard at /ui (docs/dashboard.md): server-rendered pages, no client script.
 * The CA app mounts it with `registerDashboard`; nothing else here is public.
 *
 * @example
 * registerDashboard(app, { authority, adminIds: new Set([authority.adminId]), readOnlyToken: null, sessionSeconds: 8 * 3600 });
 */
import type { FastifyInstance } from 'fastify';
import { dashboardRoutes, type DashboardRouteOptions } from './routes.js';

export { readReadOnlyToken, MIN_TOKEN_LENGTH } from './access.js';
export type DashboardOptions = DashboardRouteOptions;

/** Mounts the dashboard's routes under /ui in their own fastify scope. */
export function registerDashboard(app: FastifyInstance, options: DashboardOptions): void {
  void app.register(dashboardRoutes(options), { prefix: '/ui' });
}
