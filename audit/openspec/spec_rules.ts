/** Rules for a main spec (`openspec/specs/<id>/spec.md`). */
import {
  findMainSpecStructureIssues,
  findPurposePlaceholder,
  parseSpec,
  SpecShapeError,
} from "./spec_parser.ts";
import {
  containsShallOrMust,
  extractRequirementBody,
  extractRequirementsSection,
} from "./requirements.ts";
import { type Issue, makeReport, type Report } from "./types.ts";

export const MIN_PURPOSE_LENGTH = 50;
export const MAX_REQUIREMENT_TEXT_LENGTH = 500;

export const MSG = {
  REQUIREMENT_EMPTY: "Requirement text cannot be empty",
  REQUIREMENT_NO_SCENARIOS: "Requirement must have at least one scenario",
  SPEC_NO_REQUIREMENTS: "Spec must have at least one requirement",
  PURPOSE_TOO_BRIEF:
    `Purpose section is too brief (less than ${MIN_PURPOSE_LENGTH} characters)`,
  PURPOSE_IS_PLACEHOLDER:
    "Purpose section is still a placeholder rather than a Purpose anyone wrote (the sentence `openspec archive` " +
    "writes for a new capability, or a `TBD`/`TODO` marker left in its place). Replace it with what this " +
    "capability is for, editing the main spec directly: a `## Purpose` in a delta is read only when the " +
    "capability is created, so it cannot replace this one.",
  REQUIREMENT_TOO_LONG:
    `Requirement text is very long (>${MAX_REQUIREMENT_TEXT_LENGTH} characters). Consider breaking it down.`,
  GUIDE_MISSING_SPEC_SECTIONS:
    'Missing required sections. Expected headers: "## Purpose" and "## Requirements". Example:\n## Purpose\n[brief purpose]\n\n## Requirements\n### Requirement: Clear requirement statement\nUsers SHALL ...\n\n#### Scenario: Descriptive name\n- **WHEN** ...\n- **THEN** ...',
  GUIDE_SCENARIO_FORMAT:
    "Scenarios must use level-4 headers. Convert bullet lists into:\n#### Scenario: Short name\n- **WHEN** ...\n- **THEN** ...\n- **AND** ...",
};

/** The SHALL/MUST message for a body-less or keyword-less requirement. */
export function missingShallOrMust(
  prefix: string,
  name: string,
  guidanceOnly: boolean,
): string {
  const base = `${prefix} ${
    guidanceOnly ? "should" : "must"
  } contain SHALL or MUST`;
  const suffix = guidanceOnly
    ? " (RFC 2119 best practice for English specs)"
    : "";
  if (containsShallOrMust(name)) {
    return `${base} in the requirement body, not only in the header. Move the SHALL/MUST statement to the line immediately after the "### Requirement: ..." header.${suffix}`;
  }
  return `${base}${suffix}`;
}

/** Body text of a `### Requirement:` block (header line excluded). */
export function requirementText(raw: string): string | undefined {
  return extractRequirementBody(raw.split("\n").slice(1)) || undefined;
}

/**
 * Validate spec content. `file` is the root-relative path used for human
 * locations; issue order follows the official validator.
 */
export function validateSpecContent(
  content: string,
  strict: boolean,
  file: string,
): Report {
  const issues: Issue[] = [];
  const at = (line: number | undefined) => (line ? { line, file } : { file });
  let spec;
  try {
    spec = parseSpec(content);
  } catch (e) {
    if (!(e instanceof SpecShapeError)) throw e;
    issues.push({
      level: "ERROR",
      path: "file",
      message: `${e.message}. ${MSG.GUIDE_MISSING_SPEC_SECTIONS}`,
      ...at(e.line),
    });
    return makeReport(issues, strict);
  }
  // Schema-level checks (the official Zod schema), in its key order.
  if (spec.requirements.length === 0) {
    issues.push({
      level: "ERROR",
      path: "requirements",
      message: MSG.SPEC_NO_REQUIREMENTS,
      ...at(spec.requirementsLine),
    });
  }
  spec.requirements.forEach((r, i) => {
    if (r.text.length === 0) {
      issues.push({
        level: "ERROR",
        path: `requirements.${i}.text`,
        message: MSG.REQUIREMENT_EMPTY,
        ...at(r.line),
      });
    }
    if (r.scenarioCount === 0) {
      issues.push({
        level: "ERROR",
        path: `requirements.${i}.scenarios`,
        message: MSG.REQUIREMENT_NO_SCENARIOS,
        ...at(r.line),
      });
    }
  });
  for (const s of findMainSpecStructureIssues(content)) {
    issues.push({
      level: "ERROR",
      path: "file",
      line: s.line,
      file,
      message: s.message,
    });
  }
  const placeholder = findPurposePlaceholder(spec.overview, content);
  if (placeholder) {
    issues.push({
      level: "WARNING",
      path: "overview",
      message: MSG.PURPOSE_IS_PLACEHOLDER,
      ...at(placeholder.line ?? spec.purposeLine),
    });
  } else if (spec.overview.length < MIN_PURPOSE_LENGTH) {
    issues.push({
      level: "WARNING",
      path: "overview",
      message: MSG.PURPOSE_TOO_BRIEF,
      ...at(spec.purposeLine),
    });
  }
  spec.requirements.forEach((r, i) => {
    if (r.text.length > MAX_REQUIREMENT_TEXT_LENGTH) {
      issues.push({
        level: "INFO",
        path: `requirements[${i}]`,
        message: MSG.REQUIREMENT_TOO_LONG,
        ...at(r.line),
      });
    }
    if (r.scenarioCount === 0) {
      issues.push({
        level: "WARNING",
        path: `requirements[${i}].scenarios`,
        message:
          `${MSG.REQUIREMENT_NO_SCENARIOS}. ${MSG.GUIDE_SCENARIO_FORMAT}`,
        ...at(r.line),
      });
    }
  });
  extractRequirementsSection(content).blocks.forEach((b, i) => {
    const text = requirementText(b.raw);
    if (!text) {
      issues.push({
        level: "ERROR",
        path: `requirements[${i}]`,
        message: missingShallOrMust(`Requirement "${b.name}"`, b.name, false),
        ...at(b.line),
      });
    } else if (!containsShallOrMust(text)) {
      issues.push({
        level: "WARNING",
        path: `requirements[${i}]`,
        message: missingShallOrMust(`Requirement "${b.name}"`, b.name, true),
        ...at(b.line),
      });
    }
  });
  return makeReport(issues, strict);
}

/** Validate a spec file; an unreadable file is one ERROR, as upstream. */
export function validateSpecFile(
  path: string,
  strict: boolean,
  file: string,
): Report {
  let content: string;
  try {
    content = Deno.readTextFileSync(path);
  } catch (e) {
    const message = e instanceof Deno.errors.NotFound
      ? `ENOENT: no such file or directory, open '${path}'`
      : e instanceof Deno.errors.IsADirectory
      ? "EISDIR: illegal operation on a directory, read"
      : (e as Error).message;
    return makeReport(
      [{ level: "ERROR", path: "file", message, file }],
      strict,
    );
  }
  return validateSpecContent(content, strict, file);
}
