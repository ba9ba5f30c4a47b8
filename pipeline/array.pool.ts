/**
 * Large typed arrays reused from part to part within a worker process. A part of a scene needs
 * tens of megabytes of pixel, probability and mask arrays, the same sizes part after part; V8
 * counts such allocations as external memory and answers every few tens of megabytes of them with a
 * full mark-compact of the heap. Handing the arrays back here when a part is done keeps that
 * collection out of the batch (about 10 ms for every 1024² tile otherwise).
 *
 * The rule: whoever holds the last reference to an array may give it back, and must not touch it
 * afterwards. Arrays that did not come from the pool may be given too. What the pool holds is
 * capped in bytes; the least recently given arrays are dropped first.
 */
type PooledArray = Uint8Array | Float32Array | Int32Array;
type PooledCtor<T extends PooledArray> = {
  new (length: number): T;
  new (buffer: ArrayBufferLike): T;
  BYTES_PER_ELEMENT: number;
};

/** Pool key: element type, length, and whether the memory is shared (a Buffer counts as a Uint8Array). */
const typeOf = (ctor: unknown) => (ctor === Float32Array ? 'f32' : ctor === Int32Array ? 'i32' : 'u8');
const keyOf = (type: string, length: number, shared: boolean) => `${type}${shared ? 's' : ''}:${length}`;
const keyOfArray = (a: PooledArray) => keyOf(typeOf(a.constructor), a.length, a.buffer instanceof SharedArrayBuffer);

/** Below this size an array is left to the allocator: small arrays cost the collector nothing worth pooling. */
const MIN_POOLED_BYTES = 64 * 1024;

export class ArrayPool {
  private readonly free = new Map<string, PooledArray[]>();
  /** Every array held, oldest first, for eviction. */
  private readonly order: PooledArray[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * An array of `length` elements; its contents are whatever it last held unless `zero` is set.
   * With `shared`, in a SharedArrayBuffer, which another thread (the model's) reads without a copy.
   */
  take<T extends PooledArray>(ctor: PooledCtor<T>, length: number, zero = false, shared = false): T {
    const key = keyOf(typeOf(ctor), length, shared);
    const list = this.free.get(key);
    const a = list?.pop() as T | undefined;
    if (!a) return shared ? new ctor(new SharedArrayBuffer(length * ctor.BYTES_PER_ELEMENT)) : new ctor(length);
    if (!list!.length) this.free.delete(key);
    this.order.splice(this.order.indexOf(a), 1);
    this.bytes -= a.byteLength;
    if (zero) a.fill(0);
    return a;
  }

  /** Hands arrays back; null and undefined are skipped, and so are views into a larger buffer. */
  give(...arrays: (PooledArray | null | undefined)[]): void {
    for (const a of arrays) {
      if (
        !a ||
        a.byteLength < MIN_POOLED_BYTES ||
        a.byteOffset !== 0 ||
        a.byteLength !== a.buffer.byteLength ||
        this.order.includes(a)
      )
        continue;
      if (a.byteLength > this.maxBytes) continue;
      while (this.bytes + a.byteLength > this.maxBytes) this.drop(this.order[0]);
      const key = keyOfArray(a);
      const list = this.free.get(key) ?? [];
      list.push(a);
      this.free.set(key, list);
      this.order.push(a);
      this.bytes += a.byteLength;
    }
  }

  /** Bytes held now. */
  get heldBytes(): number {
    return this.bytes;
  }

  private drop(a: PooledArray): void {
    const key = keyOfArray(a);
    const list = this.free.get(key)!;
    list.splice(list.indexOf(a), 1);
    if (!list.length) this.free.delete(key);
    this.order.shift();
    this.bytes -= a.byteLength;
  }
}

/**
 * The process's pool. 256 MB holds what one 3072² part (TUBAN_PART_PX) with its margin uses: both
 * months' pixels, the probability, validity and mask planes.
 */
export const arrayPool = new ArrayPool(256 * 1024 * 1024);
