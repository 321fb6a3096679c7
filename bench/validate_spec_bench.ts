/**
 * `stage2 validate-spec` against the official `openspec validate` (1.13.2),
 * side by side on a generated repository (default 125 specs + 125 changes):
 * `--all` as one process each, and a single-item call as a pre-commit hook
 * makes it (median of several runs). Also checks that both give the same
 * verdict for every item.
 *
 * Run: deno run -A bench/validate_spec_bench.ts [N_SPECS] [N_CHANGES]
 */
import { runValidate } from "../audit/openspec/mod.ts";
import { runOfficial } from "../tests/audit/openspec/official.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

function specText(i: number): string {
  const reqs = Array.from(
    { length: 4 },
    (_, r) =>
      `### Requirement: Capability ${i} rule ${r}
The system SHALL apply rule ${r} of capability ${i} to every request it serves.

#### Scenario: Rule ${r} applies
- **WHEN** a request for capability ${i} arrives
- **THEN** rule ${r} is applied

#### Scenario: Rule ${r} is logged
- **WHEN** rule ${r} is applied
- **THEN** a log line names it
`,
  ).join("\n");
  return `# cap-${i} Specification

## Purpose
Capability ${i} of the generated benchmark project, with four rules and two scenarios each.

## Requirements
${reqs}`;
}

function deltaText(i: number, broken: boolean): string {
  return `## ADDED Requirements
### Requirement: Capability ${i} audit
The system SHALL record an audit entry for capability ${i}.
${
    broken ? "" : `
#### Scenario: Audit entry
- **WHEN** capability ${i} changes state
- **THEN** an audit entry is written
`
  }
## MODIFIED Requirements
### Requirement: Capability ${i} rule 0
The system SHALL apply rule 0 of capability ${i} to every request, including retries.

#### Scenario: Rule 0 applies
- **WHEN** a request for capability ${i} arrives
- **THEN** rule 0 is applied

#### Scenario: Rule 0 is logged
- **WHEN** rule 0 is applied
- **THEN** a log line names it
`;
}

/** Write a project with `nSpecs` specs and `nChanges` changes (every 10th change broken). */
export async function generateRepo(
  dir: string,
  nSpecs = 125,
  nChanges = 125,
): Promise<void> {
  for (let i = 0; i < nSpecs; i++) {
    await Deno.mkdir(`${dir}/openspec/specs/cap-${i}`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/openspec/specs/cap-${i}/spec.md`,
      specText(i),
    );
  }
  for (let i = 0; i < nChanges; i++) {
    const c = `${dir}/openspec/changes/change-${i}`;
    const cap = i % Math.max(nSpecs, 1);
    await Deno.mkdir(`${c}/specs/cap-${cap}`, { recursive: true });
    await Deno.writeTextFile(
      `${c}/proposal.md`,
      `## Why\nChange ${i} extends capability ${cap}.\n\n## What Changes\n- Audit entries.\n`,
    );
    await Deno.writeTextFile(
      `${c}/tasks.md`,
      `## 1. Implementation\n- [x] 1.1 Write the delta\n- [ ] 1.2 Ship it\n`,
    );
    await Deno.writeTextFile(
      `${c}/specs/cap-${cap}/spec.md`,
      deltaText(cap, i % 10 === 9),
    );
  }
}

async function timeStage2(args: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", MAIN, "validate-spec", ...args],
    cwd,
    stdout: "null",
    stderr: "null",
  }).output();
  const ms = performance.now() - t0;
  if (res.code > 1) {
    throw new Error(
      `stage2 validate-spec ${args.join(" ")} exited ${res.code}`,
    );
  }
  return ms;
}

async function timeOfficial(args: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  const res = await runOfficial(["validate", ...args], cwd);
  const ms = performance.now() - t0;
  if (res.code > 1) {
    throw new Error(
      `openspec validate ${args.join(" ")} exited ${res.code}: ${res.stderr}`,
    );
  }
  return ms;
}

const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface ValidateSpecBench {
  items: number;
  /** Wall time of one `--all --json` process, ms. */
  officialAllMs: number;
  stage2AllMs: number;
  /** `--all` inside an already running process (no startup), ms. */
  stage2AllInProcessMs: number;
  /** Median wall time of a single-change call, ms. */
  officialSingleMs: number;
  stage2SingleMs: number;
  /** Items whose verdict differs between the two tools (should be 0). */
  verdictMismatches: number;
}

export async function benchValidateSpec(
  nSpecs = 125,
  nChanges = 125,
  singleRuns = 5,
): Promise<ValidateSpecBench> {
  const dir = await Deno.makeTempDir({ prefix: "validate-spec-bench-" });
  try {
    await generateRepo(dir, nSpecs, nChanges);
    // Warm both (npm install of the official CLI, Deno module cache).
    await timeOfficial(["change-0"], dir);
    await timeStage2(["change-0"], dir);
    const officialAllMs = await timeOfficial(["--all", "--json"], dir);
    const stage2AllMs = await timeStage2(["--all", "--json"], dir);
    const t0 = performance.now();
    const ours = await runValidate({ all: true, json: true, root: dir });
    const stage2AllInProcessMs = performance.now() - t0;
    const official: number[] = [];
    const mine: number[] = [];
    for (let k = 0; k < singleRuns; k++) {
      official.push(await timeOfficial(["change-1", "--strict"], dir));
      mine.push(await timeStage2(["change-1", "--strict"], dir));
    }
    const theirs = await runOfficial(["validate", "--all", "--json"], dir);
    type Item = { id: string; type: string; valid: boolean };
    const verdicts = (doc: { items: Item[] }) =>
      new Map(doc.items.map((i) => [`${i.type}/${i.id}`, i.valid]));
    const a = verdicts(JSON.parse(ours.stdout));
    const b = verdicts(theirs.json as { items: Item[] });
    let verdictMismatches = Math.abs(a.size - b.size);
    for (const [k, v] of a) if (b.get(k) !== v) verdictMismatches++;
    return {
      items: a.size,
      officialAllMs,
      stage2AllMs,
      stage2AllInProcessMs,
      officialSingleMs: median(official),
      stage2SingleMs: median(mine),
      verdictMismatches,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const [s, c] = Deno.args.map(Number);
  const r = await benchValidateSpec(s || 125, c || 125);
  const f = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
  console.log(
    `validate-spec bench: ${r.items} items (${s || 125} specs, ${
      c || 125
    } changes)`,
  );
  console.log(
    `  --all, one process:   official ${f(r.officialAllMs)}   stage2 ${
      f(r.stage2AllMs)
    }   (stage2 in-process ${f(r.stage2AllInProcessMs)})`,
  );
  console.log(
    `  single change, median: official ${f(r.officialSingleMs)}   stage2 ${
      f(r.stage2SingleMs)
    }`,
  );
  console.log(`  verdict mismatches: ${r.verdictMismatches}`);
}
