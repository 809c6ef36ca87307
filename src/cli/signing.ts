/**
 * Standard Webhooks signing for `tpx webhooks forward`. Prefers the project's
 * src/webhooks/signing.ts (so the CLI signs exactly like the dispatcher); falls back to an
 * equivalent local implementation if that module is unavailable or has another shape.
 */
import { createHmac, randomBytes } from 'node:crypto';

export function localGenerateSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

export function localSign(msgId: string, timestamp: number, body: string, secrets: string[]): string {
  return secrets
    .map((s) => `v1,${createHmac('sha256', secretKey(s)).update(`${msgId}.${timestamp}.${body}`).digest('base64')}`)
    .join(' ');
}

const SECRET_RE = /^whsec_[A-Za-z0-9+/]+={0,2}$/;
export function isValidSecret(secret: string): boolean {
  return SECRET_RE.test(secret) && secretKey(secret).length >= 16;
}

interface SigningModule {
  signPayload?: (args: { msgId: string; timestamp: number; body: string; secrets: string[] }) => unknown;
  generateSecret?: () => unknown;
}

async function projectModule(): Promise<SigningModule | null> {
  try {
    const spec = '../webhooks/signing.js';
    return (await import(spec)) as SigningModule;
  } catch {
    return null;
  }
}

export async function makeSigner(): Promise<{
  sign(msgId: string, timestamp: number, body: string, secrets: string[]): string;
  generateSecret(): string;
}> {
  const mod = await projectModule();
  return {
    sign(msgId, timestamp, body, secrets) {
      if (mod?.signPayload) {
        try {
          const out = mod.signPayload({ msgId, timestamp, body, secrets });
          if (typeof out === 'string' && out.startsWith('v1,')) return out;
          if (out && typeof out === 'object') {
            const h = (out as Record<string, unknown>)['webhook-signature'] ?? (out as Record<string, unknown>).signature;
            if (typeof h === 'string' && h.startsWith('v1,')) return h;
          }
        } catch {
          /* fall back */
        }
      }
      return localSign(msgId, timestamp, body, secrets);
    },
    generateSecret() {
      const s = mod?.generateSecret?.();
      return typeof s === 'string' && isValidSecret(s) ? s : localGenerateSecret();
    },
  };
}
