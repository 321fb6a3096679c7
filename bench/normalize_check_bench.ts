// normalize-check: ignore-file -- generates a tree with deliberate 1000-based forms
/**
 * Benchmark of `stage2 normalize-check` on a generated tree of ~2,000 mixed
 * Python/Markdown files (a few percent mention 1000, as in a real project:
 * time conversions, counts, and some leftover bin normalizations). The
 * target is under 1 s for the whole check on this 2-core machine.
 *
 * Run: deno run -A bench/normalize_check_bench.ts [N_FILES]
 */
import process from "node:process";
import { checkPaths } from "../audit/normalize/mod.ts";

const PY_CLEAN = (i: number) =>
  `"""Module ${i}: box utilities."""
import numpy as np


def area_${i}(box):
    x1, y1, x2, y2 = box
    return max(0, x2 - x1) * max(0, y2 - y1)


def to_pixels_${i}(k, width):
    # Bins decode as k / 999 and project onto width - 1 pixels.
    return k / 999 * (width - 1)


class Tracker${i}:
    def __init__(self, n):
        self.n = n
        self.items = []

    def add(self, item):
        self.items.append(item)
        return len(self.items) <= self.n
`.repeat(3);

const PY_1000 = (i: number) =>
  PY_CLEAN(i) + `

def timed_${i}(fn, t0):
    elapsed = fn() - t0
    return elapsed * 1000


def legacy_${i}(box, w):
    return [v / 1000 * w for v in box]


K_${i} = 1000
`;

const MD_CLEAN = (i: number) =>
  `# Note ${i}

Coordinates are discrete bins. A bin k decodes as k/999, and a pixel x
encodes as round(999 * x / (W - 1)). Boxes are written as four coord tokens.

- Train with \`deno task train\`.
- Evaluate with the default config.

\`\`\`python
def decode(k):
    return k / 999
\`\`\`
`.repeat(3);

const MD_1000 = (i: number) =>
  MD_CLEAN(i) + `
The run saves a checkpoint every 1000 steps; latency is elapsed/1000 s.

Bins MUST NOT decode as \`k/1000\`.

The viewer draws boxes at k/1000 of the image width.
`;

/** Write `n` files (half Python, half Markdown) under `dir`. */
export async function generateTree(dir: string, n = 2000): Promise<void> {
  const perDir = 50;
  for (let d = 0; d * perDir < n; d++) {
    await Deno.mkdir(`${dir}/pkg${d}`, { recursive: true });
  }
  const writes: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const sub = `${dir}/pkg${Math.floor(i / perDir)}`;
    // One file in 10 mentions 1000 (both languages).
    const hot = i % 20 === 7 || i % 20 === 8;
    if (i % 2 === 0) {
      writes.push(
        Deno.writeTextFile(`${sub}/m${i}.py`, hot ? PY_1000(i) : PY_CLEAN(i)),
      );
    } else {
      writes.push(
        Deno.writeTextFile(`${sub}/n${i}.md`, hot ? MD_1000(i) : MD_CLEAN(i)),
      );
    }
  }
  await Promise.all(writes);
  await Deno.writeTextFile(`${dir}/.gitignore`, "build/\n");
}

export interface NormalizeCheckBench {
  files: number;
  /** Wall time of one in-process check, parsers loaded cold. */
  seconds: number;
  /** CPU time (user + system) of that check: steadier on a shared machine. */
  cpuSeconds: number;
  parsed: number;
  findings: number;
}

/** Generate the tree in a temp dir and time one check of it. */
export async function benchNormalizeCheck(
  n = 2000,
): Promise<NormalizeCheckBench> {
  const dir = await Deno.makeTempDir({ prefix: "normalize-bench-" });
  try {
    await generateTree(dir, n);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const report = await checkPaths({ root: dir, config: null });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      files: report.filesChecked,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      parsed: report.filesParsed,
      findings: report.findings.length,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export interface NormalizeCheckCliBench {
  files: number;
  /** Wall time of `stage2 normalize-check DIR`, process start included. */
  seconds: number;
  findings: number;
}

/** The whole CLI as a pre-commit hook or CI runs it. */
export async function benchNormalizeCheckCli(
  n = 2000,
): Promise<NormalizeCheckCliBench> {
  const dir = await Deno.makeTempDir({ prefix: "normalize-bench-" });
  try {
    await generateTree(dir, n);
    const main = new URL("../cli/main.ts", import.meta.url).pathname;
    const args = ["run", "-A", "--no-prompt", main, "normalize-check", dir];
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...args, "--root", dir, "--format", "json"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - t0) / 1000;
    if (out.code === 2) throw new Error(new TextDecoder().decode(out.stderr));
    const findings = JSON.parse(new TextDecoder().decode(out.stdout)).length;
    return { files: n, seconds, findings };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 2000);
  const inProcess = await benchNormalizeCheck(n);
  const cli = await benchNormalizeCheckCli(n);
  console.log(JSON.stringify({ in_process: inProcess, cli }, null, 2));
}
