/**
 * The ablation table: per arm, the mean over seeds of each metric and half
 * the range between the seeds' values ("spread"), as markdown. Metrics are
 * read generically from each run's `eval_summary.json`, so a field the
 * evaluation does not produce (yet) shows as "n/a" instead of failing.
 */

/** One column: a label and the eval_summary.json key it reads. */
export interface Column {
  label: string;
  /** A top-level key, or a dotted path into nested objects. */
  key: string;
  /** Digits after the point. */
  digits: number;
}

export const COLUMNS: readonly Column[] = [
  { label: "F1@0.5", key: "f1", digits: 3 },
  { label: "F1@0.5 ignoring desc", key: "class_agnostic.f1", digits: 3 },
  { label: "AP", key: "ap", digits: 3 },
  { label: "AP50", key: "ap50", digits: 3 },
  { label: "mean IoU", key: "mean_iou", digits: 3 },
  { label: "parse rate", key: "parse_rate", digits: 3 },
  { label: "invalid rollouts", key: "invalid_rate", digits: 3 },
  { label: "wall (s)", key: "wall_s", digits: 0 },
];

/** One finished run of one arm. */
export interface RunRow {
  arm: string;
  seed: number;
  /** eval_summary.json plus `wall_s`; any JSON object. */
  metrics: Record<string, unknown>;
}

/** Mean and half-range of the finite numbers among `values` (null when none). */
export function meanSpread(
  values: unknown[],
): { mean: number; spread: number; n: number } | null {
  const xs = values.filter((v): v is number =>
    typeof v === "number" && Number.isFinite(v)
  );
  if (xs.length === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const spread = (Math.max(...xs) - Math.min(...xs)) / 2;
  return { mean, spread, n: xs.length };
}

function valueAt(o: unknown, key: string): unknown {
  return key.split(".").reduce(
    (v: unknown, k) =>
      v !== null && typeof v === "object"
        ? (v as Record<string, unknown>)[k]
        : undefined,
    o,
  );
}

function cell(values: unknown[], digits: number, seeds: number): string {
  const m = meanSpread(values);
  if (m === null) return "n/a";
  const v = m.mean.toFixed(digits);
  // a metric some seeds lack is flagged rather than silently averaged
  const partial = m.n < seeds ? ` (${m.n}/${seeds})` : "";
  return seeds > 1 && m.n > 1
    ? `${v} ± ${m.spread.toFixed(digits)}${partial}`
    : `${v}${partial}`;
}

/**
 * Markdown table, one row per arm in `armOrder` (arms without runs are
 * listed as pending).
 */
export function ablationMarkdown(
  rows: RunRow[],
  armOrder: { name: string; label: string }[],
  columns: readonly Column[] = COLUMNS,
): string {
  const head = `| arm | seeds | ${columns.map((c) => c.label).join(" | ")} |`;
  const rule = `|${" --- |".repeat(columns.length + 2)}`;
  const lines = [head, rule];
  for (const arm of armOrder) {
    const mine = rows.filter((r) => r.arm === arm.name);
    if (mine.length === 0) {
      lines.push(
        `| ${arm.label} | 0 | ${columns.map(() => "pending").join(" | ")} |`,
      );
      continue;
    }
    const cells = columns.map((c) =>
      cell(mine.map((r) => valueAt(r.metrics, c.key)), c.digits, mine.length)
    );
    lines.push(
      `| ${arm.label} | ${mine.map((r) => r.seed).join(", ")} | ${
        cells.join(" | ")
      } |`,
    );
  }
  return lines.join("\n") + "\n";
}
