import { describe, expect, it } from 'vitest';
import { ArrayPool } from '../pipeline/array.pool.ts';

const MB = 1024 * 1024;

describe('ArrayPool', () => {
  it('hands a given array out again for the same type and length, zeroed when asked', () => {
    const pool = new ArrayPool(8 * MB);
    const a = pool.take(Float32Array, MB / 4);
    a.fill(3);
    pool.give(a);
    expect(pool.heldBytes).toBe(MB);
    expect(pool.take(Uint8Array, MB)).not.toBe(a); // same bytes, other type
    const again = pool.take(Float32Array, MB / 4, true);
    expect(again).toBe(a);
    expect(again.some((v) => v !== 0)).toBe(false);
    expect(pool.heldBytes).toBe(0);
    expect(pool.take(Float32Array, MB / 4)).not.toBe(a); // handed out once only
  });

  it('keeps within its byte limit, dropping the oldest first', () => {
    const pool = new ArrayPool(3 * MB);
    const [a, b, c, d] = [0, 1, 2, 3].map(() => new Uint8Array(MB));
    pool.give(a, b, c);
    pool.give(d);
    expect(pool.heldBytes).toBe(3 * MB);
    const out = [0, 1, 2].map(() => pool.take(Uint8Array, MB));
    for (const kept of [b, c, d]) expect(out.includes(kept)).toBe(true); // identity, not contents
    expect(out.includes(a)).toBe(false);
  });

  it('refuses views into larger buffers, small arrays, and an array given twice', () => {
    const pool = new ArrayPool(8 * MB);
    const big = new Uint8Array(2 * MB);
    pool.give(big.subarray(0, MB), new Uint8Array(1024), null, undefined);
    expect(pool.heldBytes).toBe(0);
    pool.give(big, big);
    expect(pool.heldBytes).toBe(2 * MB);
  });

  it("keeps shared arrays (for the model's thread) apart from private ones of the same type and length", () => {
    const pool = new ArrayPool(8 * MB);
    const shared = pool.take(Float32Array, MB / 4, false, true);
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    pool.give(shared);
    const plain = pool.take(Float32Array, MB / 4);
    expect(plain).not.toBe(shared);
    expect(plain.buffer).toBeInstanceOf(ArrayBuffer);
    expect(pool.take(Float32Array, MB / 4, false, true)).toBe(shared);
  });
});
