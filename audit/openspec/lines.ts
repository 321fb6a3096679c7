/**
 * The line grammar OpenSpec reads Markdown with.
 *
 * Why not a CommonMark parser here: the official CLI (`@fission-ai/openspec`
 * 1.13.2) decides verdicts from its own line grammar, which differs from
 * CommonMark on purpose-relevant inputs (a fence indented by 4+ spaces still
 * opens a fence, `   ## X` with leading spaces is not a header, an unclosed
 * fence inside a list item runs to the end of the file). Verdict parity is the
 * contract of `validate-spec`, so the rules that decide verdicts read lines the
 * same way; `commonmark.ts` uses mdast to point out where that reading and
 * CommonMark disagree.
 */

/** Strip a UTF-8 BOM and normalize CRLF/CR line endings. */
export function normalizeContent(content: string): string {
  return content.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
}

interface Fence {
  marker: string;
  length: number;
}

function openingFence(line: string): Fence | null {
  const m = line.match(/^\s*(`{3,}|~{3,})/);
  return m ? { marker: m[1][0], length: m[1].length } : null;
}

function closesFence(line: string, fence: Fence): boolean {
  const m = line.match(/^\s*(`{3,}|~{3,})\s*$/);
  return Boolean(
    m && m[1][0] === fence.marker && m[1].length >= fence.length,
  );
}

/**
 * Per-line flags: true for every line of a fenced block, fence lines
 * included. An unclosed fence masks the rest of the input.
 */
export function codeFenceMask(lines: readonly string[]): boolean[] {
  const mask = new Array<boolean>(lines.length).fill(false);
  let active: Fence | null = null;
  for (let i = 0; i < lines.length; i++) {
    if (!active) {
      const fence = openingFence(lines[i]);
      if (fence) {
        active = fence;
        mask[i] = true;
      }
      continue;
    }
    mask[i] = true;
    if (closesFence(lines[i], active)) active = null;
  }
  return mask;
}

/** Normalized content split into lines with its fence mask. */
export interface LineDoc {
  lines: string[];
  fenced: boolean[];
}

export function lineDoc(content: string): LineDoc {
  const lines = normalizeContent(content).split("\n");
  return { lines, fenced: codeFenceMask(lines) };
}
