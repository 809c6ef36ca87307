/** Bearer-token check for the publish and admin APIs: constant-time, on fixed-length digests. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

export function makeAdminGuard(adminToken: string) {
  const expected = createHash('sha256').update(adminToken).digest();
  return async function adminGuard(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!match) throw new HttpError(401, 'UNAUTHORIZED', 'Missing admin token: send Authorization: Bearer <admin token>');
    const presented = createHash('sha256').update(match[1]).digest();
    if (!timingSafeEqual(presented, expected)) throw new HttpError(401, 'UNAUTHORIZED', 'Invalid admin token');
  };
}
