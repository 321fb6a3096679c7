/**
 * Config loading scales linearly with the number of keys: loads a config
 * with n and 4n unknown top-level keys (every one is located and reported)
 * side by side, interleaved and best of `reps`, and prints the time ratio
 * (about 4 when linear, about 16 when quadratic). Also times a 10 MB YAML
 * of keys.
 *
 *   deno run -A bench/config_load_bench.ts [--quick]
 */
import { join } from "node:path";
import { loadConfig } from "../trainer/config/mod.ts";

export interface ConfigLoadBench {
  keys: number;
  smallSeconds: number;
  largeSeconds: number;
  /** largeSeconds / smallSeconds for 4x the keys: ~4 linear, ~16 quadratic. */
  ratio: number;
  tenMbSeconds: number;
}

async function timeLoad(path: string): Promise<number> {
  const t = performance.now();
  await loadConfig(path).catch(() => {}); // unknown keys: every one reported
  return (performance.now() - t) / 1000;
}

export async function benchConfigLoad(
  keys: number,
  reps: number,
): Promise<ConfigLoadBench> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-cfg-bench-" });
  try {
    const write = async (name: string, n: number) => {
      const lines = ["training:", "  max_steps: 3"];
      for (let i = 0; i < n; i++) lines.push(`k${i}: ${i}`);
      await Deno.writeTextFile(join(dir, name), lines.join("\n") + "\n");
      return join(dir, name);
    };
    const small = await write("small.yaml", keys);
    const large = await write("large.yaml", 4 * keys);
    let s = Infinity, l = Infinity;
    for (let r = 0; r < reps; r++) {
      s = Math.min(s, await timeLoad(small));
      l = Math.min(l, await timeLoad(large));
    }
    // 10 MB of keys (unknown ones: each is located and reported)
    const lines = ["training:", "  max_steps: 3"];
    let size = 0;
    for (let i = 0; size < 10e6; i++) {
      const l = `key_${i}: value_${i}`;
      lines.push(l);
      size += l.length + 1;
    }
    const ten = join(dir, "ten.yaml");
    await Deno.writeTextFile(ten, lines.join("\n") + "\n");
    const tenMbSeconds = await timeLoad(ten);
    return {
      keys,
      smallSeconds: s,
      largeSeconds: l,
      ratio: l / s,
      tenMbSeconds,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const r = await benchConfigLoad(quick ? 2000 : 5000, quick ? 1 : 3);
  console.log(
    `config load: ${r.keys} keys ${r.smallSeconds.toFixed(2)} s, ${
      4 * r.keys
    } keys ${r.largeSeconds.toFixed(2)} s, ratio ${
      r.ratio.toFixed(1)
    } (linear ~4, quadratic ~16); 10 MB YAML ${r.tenMbSeconds.toFixed(1)} s`,
  );
}
