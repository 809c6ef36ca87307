import { describe, expect, it } from 'vitest';
import { generateToken, hashToken, hashesEqual, isWellFormedToken, tokenPrefix, TOKEN_LENGTH } from '../../src/store/keys.js';
import { uuidv7 } from '../../src/store/ids.js';

describe('API key tokens', () => {
  it('are tp_live_ + 43 base62 characters, all distinct', () => {
    const tokens = Array.from({ length: 500 }, () => generateToken());
    for (const t of tokens) {
      expect(t).toMatch(/^tp_live_[0-9A-Za-z]{43}$/);
      expect(t).toHaveLength(TOKEN_LENGTH);
      expect(isWellFormedToken(t)).toBe(true);
    }
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('use the whole alphabet (no obviously biased encoding)', () => {
    const chars = new Set(Array.from({ length: 200 }, () => generateToken().slice(8)).join(''));
    expect(chars.size).toBe(62);
  });

  it('shape check rejects anything else', () => {
    const t = generateToken();
    for (const bad of [undefined, null, 42, '', t.slice(0, -1), t + 'A', t.replace('tp_live_', 'tp_test_'), t.slice(0, -1) + '_', ` ${t.slice(1)}`]) {
      expect(isWellFormedToken(bad)).toBe(false);
    }
  });

  it('hash is SHA-256 (32 bytes), deterministic; prefix is the first 12 characters', () => {
    const t = generateToken();
    expect(hashToken(t)).toHaveLength(32);
    expect(hashesEqual(hashToken(t), hashToken(t))).toBe(true);
    expect(hashesEqual(hashToken(t), hashToken(generateToken()))).toBe(false);
    expect(hashesEqual(hashToken(t), Buffer.alloc(16))).toBe(false);
    expect(tokenPrefix(t)).toBe(t.slice(0, 12));
    expect(tokenPrefix(t).startsWith('tp_live_')).toBe(true);
  });
});

describe('uuidv7', () => {
  it('is a valid, unique, increasing version-7 UUID', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
  });

  it('encodes the millisecond clock in its first 48 bits', () => {
    const ms = Date.UTC(2030, 0, 1);
    const id = uuidv7(ms);
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBeGreaterThanOrEqual(ms);
  });
});
