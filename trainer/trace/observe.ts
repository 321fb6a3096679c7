/**
 * The recorder's own observations of a training forward, made on the
 * tensors the model consumed and produced (never on what the trainer says
 * it did):
 *
 * - token ids: pass 0 of a micro-batch is fed the plain embedding of the
 *   teacher-forced ids, so every fed row is looked up exactly in the
 *   embedding table; a row that is no table row is "foreign";
 * - coord slots: the positions whose id is a coord token; on pass k >= 1
 *   the row fed there is digested next to the row the recorder recomputes
 *   itself, in float64 on the host, from pass k-1's logits at p - 1 and the
 *   embedding table (`softmax(z[p-1, coord_ids] / T) @ E(coord_ids)`), and
 *   next to the base row E(id); every other row must still be bitwise E(id);
 * - tape connectivity: under a gradient tape, whether the fed embeddings
 *   are computed from the embedding weights by operations on that tape.
 *
 * It also writes the run's replay batch (`probe_batch.ts`) once.
 */
import { float32Bits, rowBitsEqual } from "../common/rows.ts";
import { tf } from "../runtime.ts";
import {
  encodeFloats,
  PROBE_BATCH_FILE,
  type ProbeBatch,
} from "./probe_batch.ts";
import type {
  Digest,
  ForwardContext,
  Observed,
  SlotObservation,
} from "./schema.ts";
import type { ForwardTensors } from "./tracer.ts";

export interface ObserverOptions {
  /** The coord token ids in bin order (`<|coord_0|>`..). */
  coordTokenIds: ArrayLike<number>;
  /** `custom.extra.stage2_ab.softctx_temperature`. */
  softctxTemperature: number;
  /** Run folder for the replay batch; null writes none. */
  runDir: string | null;
  /**
   * True when the run resumes: its replay batch (if any) is kept. A fresh
   * run replaces one a previous run left in the folder.
   */
  resumed?: boolean;
}

/** Sign (+1/-1) of digest vector `k` at index `h`: a fixed integer hash (lowbias32). */
function sign(k: number, h: number): number {
  let x = Math.imul(h + 1, 0x9e3779b1) ^ Math.imul(k, 0x85ebca6b);
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x & 1 ? 1 : -1;
}

const round = (v: number) => Number(v.toPrecision(9));

/**
 * `[|x|, r1 . x, r2 . x]` of a row `x` (at `off` in `data`, length `H`),
 * with r1, r2 fixed +-1/sqrt(H) vectors; computed in float64.
 *
 * @example
 * digest(new Float32Array([3, 4]), 0, 2)[0]; // 5
 */
export function digest(
  data: ArrayLike<number>,
  off: number,
  H: number,
): Digest {
  let n = 0, a = 0, b = 0;
  for (let h = 0; h < H; h++) {
    const v = data[off + h];
    n += v * v;
    a += sign(1, h) * v;
    b += sign(2, h) * v;
  }
  const s = 1 / Math.sqrt(H);
  return [round(Math.sqrt(n)), round(a * s), round(b * s)];
}

/**
 * The expected coord embedding for one slot, recomputed in float64:
 * `softmax(z / T) @ E(coord_ids)` from the coord logits `z` [K] read at
 * p - 1 and the embedding table `table` [V, H].
 */
export function softRow(
  z: ArrayLike<number>,
  table: Float32Array,
  H: number,
  coordIds: ArrayLike<number>,
  temperature: number,
): Float64Array {
  let mx = -Infinity;
  for (let k = 0; k < z.length; k++) mx = Math.max(mx, z[k]);
  const out = new Float64Array(H);
  let sum = 0;
  for (let k = 0; k < z.length; k++) {
    const w = Math.exp((z[k] - mx) / temperature);
    sum += w;
    const off = coordIds[k] * H;
    for (let h = 0; h < H; h++) out[h] += w * table[off + h];
  }
  for (let h = 0; h < H; h++) out[h] /= sum;
  return out;
}

/** Engine internals read by `onTape` (TF.js keeps the active tape here). */
interface TapeNode {
  inputs: Record<string, { id: number }>;
  outputs: { id: number }[];
}

/**
 * Whether `y` is computed from `x` by operations recorded on the active
 * gradient tape (so gradients of anything built from `y` reach `x`); null
 * when no tape is recording. Walks the tape backwards from `y`.
 */
export function onTape(y: tf.Tensor, x: tf.Tensor): boolean | null {
  const st = tf.engine().state as unknown as {
    gradientDepth: number;
    activeTape: TapeNode[] | null;
  };
  if (st.gradientDepth === 0 || !st.activeTape) return null;
  const producer = new Map<number, TapeNode>();
  for (const n of st.activeTape) {
    for (const o of n.outputs) producer.set(o.id, n);
  }
  const seen = new Set<number>();
  const todo = [y.id];
  while (todo.length > 0) {
    const id = todo.pop()!;
    if (id === x.id) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    const node = producer.get(id);
    if (node) { for (const t of Object.values(node.inputs)) todo.push(t.id); }
  }
  return false;
}

/** The embedding table on the host, with an exact row -> id index. */
interface TableView {
  source: object;
  data: Float32Array;
  bits: Uint32Array;
  H: number;
  /** Row hash -> ids with that hash. */
  index: Map<number, number[]>;
}

function rowHash(bits: Uint32Array, off: number, H: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < H; i++) h = Math.imul(h ^ bits[off + i], 0x01000193);
  return h >>> 0;
}

/** What the observer keeps between the passes of one micro-batch. */
interface MicroBatchState {
  key: string;
  /** Token id per position (-1: foreign row), per batch row. */
  ids: Int32Array[];
  /** Coord-slot positions per batch row. */
  slots: number[][];
  /** Coord logits at p - 1 of the last pass, per row and slot [K]. */
  prev: Float32Array[][] | null;
}

export class ForwardObserver {
  readonly #coordIds: Int32Array;
  readonly #coordSet: Set<number>;
  readonly #temperature: number;
  readonly #runDir: string | null;
  #table: TableView | null = null;
  #mb: MicroBatchState | null = null;
  #probeWritten = false;

  constructor(opts: ObserverOptions) {
    this.#coordIds = Int32Array.from(opts.coordTokenIds);
    this.#coordSet = new Set(this.#coordIds);
    this.#temperature = opts.softctxTemperature;
    this.#runDir = opts.runDir;
    if (opts.runDir !== null) {
      const path = `${opts.runDir}/${PROBE_BATCH_FILE}`;
      try {
        if (opts.resumed) {
          Deno.statSync(path);
          this.#probeWritten = true;
        } else Deno.removeSync(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
  }

  /** Observations of one training forward on the inputsEmbeds path, else null. */
  observe(ctx: ForwardContext, t: ForwardTensors): Observed | null {
    if (ctx.purpose !== "train" || t.inputsEmbeds === null) return null;
    const [B, T, H] = t.inputsEmbeds.shape;
    const table = this.#tableOf(t.embedTable);
    if (table.H !== H) return null;
    const key = `${ctx.globalStep}/${ctx.microBatch}`;
    const fed = t.inputsEmbeds.dataSync() as Float32Array;
    const fedBits = float32Bits(fed);
    let obs: Observed;
    if (ctx.pass === 0) obs = this.#firstPass(key, fedBits, table, B, T);
    else if (this.#mb?.key === key && this.#mb.prev !== null) {
      obs = this.#laterPass(this.#mb, fed, fedBits, table, B, T);
    } else return null;
    obs.embedsOnTape = onTape(t.inputsEmbeds, t.embedTable);
    const mb = this.#mb!;
    mb.prev = ctx.pass + 1 < ctx.nPasses
      ? this.#slotLogits(mb, t.logits)
      : null;
    if (ctx.pass === 0 && ctx.channel === "A" && ctx.packed) {
      this.#writeProbeBatch(ctx, t, mb, obs);
    }
    return obs;
  }

  #tableOf(v: tf.Tensor2D): TableView {
    const source = v.dataId as object;
    if (this.#table?.source === source) return this.#table;
    const data = v.dataSync() as Float32Array;
    const [V, H] = v.shape;
    const bits = float32Bits(data);
    const index = new Map<number, number[]>();
    for (let id = 0; id < V; id++) {
      const h = rowHash(bits, id * H, H);
      const list = index.get(h);
      if (list) list.push(id);
      else index.set(h, [id]);
    }
    this.#table = { source, data, bits, H, index };
    return this.#table;
  }

  #lookup(table: TableView, bits: Uint32Array, off: number): number {
    const H = table.H;
    for (const id of table.index.get(rowHash(bits, off, H)) ?? []) {
      if (rowBitsEqual(table.bits, id * H, bits, off, H)) return id;
    }
    return -1;
  }

  #firstPass(
    key: string,
    fedBits: Uint32Array,
    table: TableView,
    B: number,
    T: number,
  ): Observed {
    const H = table.H;
    const ids: Int32Array[] = [];
    const slots: number[][] = [];
    const foreignRows: number[][] = [];
    const slotObs: SlotObservation[][] = [];
    for (let b = 0; b < B; b++) {
      const row = new Int32Array(T);
      const sl: number[] = [], fr: number[] = [], so: SlotObservation[] = [];
      for (let p = 0; p < T; p++) {
        row[p] = this.#lookup(table, fedBits, (b * T + p) * H);
        if (row[p] < 0) fr.push(p);
        else if (this.#coordSet.has(row[p])) {
          sl.push(p);
          so.push({ p, id: row[p], fed: null, want: null, base: null });
        }
      }
      ids.push(row);
      slots.push(sl);
      foreignRows.push(fr);
      slotObs.push(so);
    }
    this.#mb = { key, ids, slots, prev: null };
    return { foreignRows, slots: slotObs, embedsOnTape: null };
  }

  #laterPass(
    mb: MicroBatchState,
    fed: Float32Array,
    fedBits: Uint32Array,
    table: TableView,
    B: number,
    T: number,
  ): Observed {
    const H = table.H;
    const foreignRows: number[][] = [];
    const slotObs: SlotObservation[][] = [];
    for (let b = 0; b < B; b++) {
      const isSlot = new Map(mb.slots[b].map((p, k) => [p, k]));
      const fr: number[] = [], so: SlotObservation[] = [];
      for (let p = 0; p < T; p++) {
        const off = (b * T + p) * H;
        const id = mb.ids[b][p];
        const k = isSlot.get(p);
        if (k === undefined) {
          if (id < 0 || !rowBitsEqual(table.bits, id * H, fedBits, off, H)) {
            fr.push(p);
          }
          continue;
        }
        const want = softRow(
          mb.prev![b][k],
          table.data,
          H,
          this.#coordIds,
          this.#temperature,
        );
        so.push({
          p,
          id,
          fed: digest(fed, off, H),
          want: digest(want, 0, H),
          base: digest(table.data, id * H, H),
        });
      }
      foreignRows.push(fr);
      slotObs.push(so);
    }
    return { foreignRows, slots: slotObs, embedsOnTape: null };
  }

  /** Coord logits at p - 1 for every slot p, from this pass's logits [B, T, V]. */
  #slotLogits(mb: MicroBatchState, logits: tf.Tensor3D): Float32Array[][] {
    const [, T, V] = logits.shape;
    const data = logits.dataSync() as Float32Array;
    const K = this.#coordIds.length;
    return mb.slots.map((row, b) =>
      row.map((p) => {
        const off = (b * T + p - 1) * V;
        const z = new Float32Array(K);
        for (let k = 0; k < K; k++) z[k] = data[off + this.#coordIds[k]];
        return z;
      })
    );
  }

  #writeProbeBatch(
    ctx: ForwardContext,
    t: ForwardTensors,
    mb: MicroBatchState,
    obs: Observed,
  ): void {
    if (this.#probeWritten || this.#runDir === null) return;
    if (obs.foreignRows.some((r) => r.length > 0)) return;
    if (t.positionIds === null || t.positionIds.shape[0] !== 4) return;
    const [, B, T] = t.positionIds.shape;
    const px = t.pixelValues;
    const batch: ProbeBatch = {
      version: 1,
      globalStep: ctx.globalStep,
      microBatch: ctx.microBatch,
      nPasses: ctx.nPasses,
      softctxTemperature: this.#temperature,
      batch: B,
      seqLen: T,
      inputIds: mb.ids.map((r) => Array.from(r)),
      positionIds: Array.from(t.positionIds.dataSync()),
      imageGridThw: t.imageGridThw.map((g) => [...g]),
      pixelShape: px ? [px.shape[0], px.shape[1]] : [0, 0],
      pixelValues: encodeFloats(
        px ? px.dataSync() as Float32Array : new Float32Array(0),
      ),
    };
    const path = `${this.#runDir}/${PROBE_BATCH_FILE}`;
    const tmp = `${path}.tmp-${Deno.pid}`;
    Deno.writeTextFileSync(tmp, JSON.stringify(batch));
    Deno.renameSync(tmp, path);
    this.#probeWritten = true;
  }
}
