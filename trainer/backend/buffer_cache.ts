/**
 * Released kernel-output buffers kept for reuse by the blas backend.
 *
 * Why: a training step allocates hundreds of MB of kernel outputs, and a
 * fresh buffer costs page faults (measured ~0.3 ms per MB, as much as all
 * the step's matmuls), while about the same sizes recur every step. Sizes
 * are rounded up to classes (quarter steps between powers of two, at most
 * 25% slack) so that sequences of slightly different lengths share
 * buffers. When more than `capBytes` are kept, the buffers released longest
 * ago are dropped (left to the garbage collector).
 */
export class BufferCache {
  /** Kept buffers by class size; each list is a stack (most recent last). */
  private readonly byClass = new Map<number, ArrayBufferLike[]>();
  /** Every kept buffer, oldest release first. */
  private readonly order = new Map<ArrayBufferLike, number>();
  private bytes = 0;

  constructor(private readonly capBytes: number) {}

  /** The class (buffer size in bytes) that holds `bytes`. */
  static classOf(bytes: number): number {
    if (bytes <= 64) return 64;
    const p = 2 ** Math.floor(Math.log2(bytes));
    for (const f of [1, 1.25, 1.5, 1.75, 2]) {
      if (p * f >= bytes) return p * f;
    }
    return 2 * p;
  }

  /** A kept buffer of class `cls`, or null. */
  take(cls: number): ArrayBufferLike | null {
    const buf = this.byClass.get(cls)?.pop();
    if (!buf) return null;
    this.order.delete(buf);
    this.bytes -= cls;
    return buf;
  }

  /** Keep a released buffer (its size must be a class size). */
  give(buf: ArrayBufferLike): void {
    const cls = buf.byteLength;
    if (cls > this.capBytes || this.order.has(buf)) return;
    const list = this.byClass.get(cls) ?? [];
    list.push(buf);
    this.byClass.set(cls, list);
    this.order.set(buf, cls);
    this.bytes += cls;
    for (const [old, c] of this.order) {
      if (this.bytes <= this.capBytes) break;
      const l = this.byClass.get(c)!;
      l.splice(l.indexOf(old), 1);
      this.order.delete(old);
      this.bytes -= c;
    }
  }

  /** Bytes kept now. */
  get size(): number {
    return this.bytes;
  }
}
