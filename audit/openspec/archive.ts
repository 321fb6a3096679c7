/**
 * Dry run of `openspec archive`'s merge preconditions for one delta spec:
 * the first reason archive would refuse to apply it, or null. Nothing is
 * rebuilt or written; only the checks that make archive throw are replayed.
 */
import {
  type DeltaPlan,
  describeScenarioBalance,
  diffScenarioNames,
  extractRequirementsSection,
  foldRequirementName,
  normalizeRequirementName,
  type RequirementBlock,
} from "./requirements.ts";
import { findMainSpecStructureIssues } from "./spec_parser.ts";

export interface Refusal {
  message: string;
  /** Line in the delta file of the entry archive refuses, when known. */
  line?: number;
}

const hdr = (name: string) => `"### Requirement: ${name}"`;

function preconditions(plan: DeltaPlan, spec: string): Refusal | null {
  if (plan.unpairedRenames.length > 0) {
    const f = plan.unpairedRenames[0];
    return {
      line: f.line,
      message:
        `${spec} validation failed - RENAMED entry on line ${f.line} has no matching ${
          f.side === "FROM" ? "TO" : "FROM"
        }: for header ${
          hdr(f.name)
        }. Write each rename as a FROM: line followed immediately by its TO: line.`,
    };
  }
  const dup = (
    kind: string,
    items: { name: string; line: number }[],
  ): Refusal | null => {
    const seen = new Set<string>();
    for (const it of items) {
      const k = normalizeRequirementName(it.name);
      if (seen.has(k)) {
        return {
          line: it.line,
          message:
            `${spec} validation failed - duplicate requirement in ${kind} for header ${
              hdr(it.name)
            }`,
        };
      }
      seen.add(k);
    }
    return null;
  };
  const d = dup("ADDED", plan.added) ?? dup("MODIFIED", plan.modified) ??
    dup("REMOVED", plan.removed);
  if (d) return d;
  const from = new Set<string>();
  const to = new Set<string>();
  for (const r of plan.renamed) {
    const f = normalizeRequirementName(r.from);
    const t = normalizeRequirementName(r.to);
    if (from.has(f)) {
      return {
        line: r.line,
        message:
          `${spec} validation failed - duplicate FROM in RENAMED for header ${
            hdr(r.from)
          }`,
      };
    }
    if (to.has(t)) {
      return {
        line: r.line,
        message:
          `${spec} validation failed - duplicate TO in RENAMED for header ${
            hdr(r.to)
          }`,
      };
    }
    from.add(f);
    to.add(t);
  }
  const added = new Set(
    plan.added.map((b) => normalizeRequirementName(b.name)),
  );
  const modified = new Set(
    plan.modified.map((b) => normalizeRequirementName(b.name)),
  );
  const removed = new Set(
    plan.removed.map((b) => normalizeRequirementName(b.name)),
  );
  const conflicts: { name: string; a: string; b: string }[] = [];
  for (const n of modified) {
    if (removed.has(n)) {
      conflicts.push({ name: n, a: "MODIFIED", b: "REMOVED" });
    }
    if (added.has(n)) conflicts.push({ name: n, a: "MODIFIED", b: "ADDED" });
  }
  for (const n of added) {
    if (removed.has(n)) conflicts.push({ name: n, a: "ADDED", b: "REMOVED" });
  }
  for (const r of plan.renamed) {
    const f = normalizeRequirementName(r.from);
    const match = [...removed].find((x) =>
      foldRequirementName(x) === foldRequirementName(f)
    );
    if (match !== undefined) {
      return {
        line: r.line,
        message:
          `${spec} validation failed - requirement present in multiple sections (RENAMED and REMOVED) for header ${
            hdr(r.from)
          }` +
          (match === f ? "" : ` (REMOVED spells it "${match}")`),
      };
    }
    if (modified.has(f)) {
      return {
        line: r.line,
        message:
          `${spec} validation failed - when a rename exists, MODIFIED must reference the NEW header ${
            hdr(r.to)
          }`,
      };
    }
    if (added.has(normalizeRequirementName(r.to))) {
      return {
        line: r.line,
        message:
          `${spec} validation failed - RENAMED TO header collides with ADDED for ${
            hdr(r.to)
          }`,
      };
    }
  }
  if (conflicts.length > 0) {
    const c = conflicts[0];
    return {
      message:
        `${spec} validation failed - requirement present in multiple sections (${c.a} and ${c.b}) for header ${
          hdr(c.name)
        }`,
    };
  }
  if (
    plan.added.length + plan.modified.length + plan.removed.length +
        plan.renamed.length === 0
  ) {
    return {
      message:
        `Delta parsing found no operations for ${spec}. Provide ADDED/MODIFIED/REMOVED/RENAMED sections in change spec.`,
    };
  }
  return null;
}

/** Content equality as archive compares blocks (line endings, outer whitespace). */
function sameBlock(a: string, b: string): boolean {
  const norm = (raw: string) => raw.replace(/\r\n?/g, "\n").trim();
  return norm(a) === norm(b);
}

/**
 * Why archive would refuse `plan` against the main spec `target` (null
 * content = the capability does not exist yet).
 */
export function archiveRefusal(
  plan: DeltaPlan,
  spec: string,
  target: string | null,
): Refusal | null {
  const pre = preconditions(plan, spec);
  if (pre) return pre;
  const blocks = new Map<string, RequirementBlock>();
  const isNew = target === null;
  if (isNew) {
    if (plan.modified.length > 0 || plan.renamed.length > 0) {
      return {
        line: plan.modified[0]?.line ?? plan.renamed[0]?.line,
        message:
          `${spec}: target spec does not exist; only ADDED requirements are allowed for new specs. MODIFIED and RENAMED operations require an existing spec.`,
      };
    }
  } else {
    const structure = findMainSpecStructureIssues(target);
    if (structure.length > 0) {
      return {
        message:
          `${spec}: target spec is structurally invalid and cannot be updated until fixed:\n${
            structure.map((s) => `line ${s.line}: ${s.message}`).join("\n")
          }`,
      };
    }
    for (const b of extractRequirementsSection(target).blocks) {
      blocks.set(normalizeRequirementName(b.name), b);
    }
  }
  const nearMiss = (key: string, except?: string) =>
    [...blocks.keys()].find((k) =>
      k !== except && foldRequirementName(k) === foldRequirementName(key)
    );
  for (const r of plan.renamed) {
    const f = normalizeRequirementName(r.from);
    const t = normalizeRequirementName(r.to);
    if (!blocks.has(f)) {
      if (blocks.has(t)) {
        const near = nearMiss(f, t);
        if (near !== undefined) {
          return {
            line: r.line,
            message: `${spec} RENAMED failed for header ${
              hdr(r.from)
            } - source not found, but ${
              hdr(blocks.get(near)!.name)
            } exists; fix the header to match it exactly`,
          };
        }
        continue;
      }
      return {
        line: r.line,
        message: `${spec} RENAMED failed for header ${
          hdr(r.from)
        } - source not found`,
      };
    }
    if (blocks.has(t)) {
      return {
        line: r.line,
        message: `${spec} RENAMED failed for header ${
          hdr(r.to)
        } - target already exists`,
      };
    }
    const near = nearMiss(t, f);
    if (near !== undefined) {
      return {
        line: r.line,
        message: `${spec} RENAMED failed for header ${hdr(r.to)} - ${
          hdr(blocks.get(near)!.name)
        } already exists and differs only in case or spacing; choose a distinct name`,
      };
    }
    const block = blocks.get(f)!;
    blocks.delete(f);
    blocks.set(t, { ...block, name: t });
  }
  for (const rem of plan.removed) {
    const key = normalizeRequirementName(rem.name);
    if (!blocks.has(key)) {
      if (!isNew) {
        const near = nearMiss(key);
        if (near !== undefined) {
          return {
            line: rem.line,
            message: `${spec} REMOVED failed for header ${
              hdr(rem.name)
            } - not found, but ${
              hdr(blocks.get(near)!.name)
            } exists; fix the header to match it exactly`,
          };
        }
      }
      continue;
    }
    blocks.delete(key);
  }
  for (const mod of plan.modified) {
    const key = normalizeRequirementName(mod.name);
    const current = blocks.get(key);
    if (!current) {
      return {
        line: mod.line,
        message: `${spec} MODIFIED failed for header ${
          hdr(mod.name)
        } - not found`,
      };
    }
    const diff = diffScenarioNames(current, mod);
    if (diff.missing.length > 0) {
      return {
        line: mod.line,
        message: `${spec} MODIFIED failed for header ${
          hdr(mod.name)
        } - current spec contains scenario(s) not present in the modified block: ${
          diff.missing.map((n) => `"${n}"`).join(", ")
        }. ${
          describeScenarioBalance(diff)
        } Refresh the change spec before archiving to avoid dropping scenarios.`,
      };
    }
    blocks.set(key, mod);
  }
  for (const add of plan.added) {
    const key = normalizeRequirementName(add.name);
    const existing = blocks.get(key);
    if (existing) {
      if (sameBlock(existing.raw, add.raw)) continue;
      return {
        line: add.line,
        message: `${spec} ADDED failed for header ${
          hdr(add.name)
        } - already exists`,
      };
    }
    const near = nearMiss(key);
    if (near !== undefined) {
      return {
        line: add.line,
        message: `${spec} ADDED failed for header ${hdr(add.name)} - ${
          hdr(blocks.get(near)!.name)
        } already exists and differs only in case or spacing; use MODIFIED with that exact header to change it, or choose a distinct name`,
      };
    }
    blocks.set(key, add);
  }
  return null;
}
