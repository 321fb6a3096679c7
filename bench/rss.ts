/** Peak resident memory of this process (Linux), for the benchmarks. */

/**
 * Reset the peak resident set size (Linux: writing 5 to clear_refs), so a
 * later peakRssBytes() covers only what ran after. No-op elsewhere.
 */
export function resetPeakRss(): void {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
  } catch {
    // not Linux, or not permitted: the peak then covers the whole process
  }
}

/** Peak resident set size of this process in bytes (Linux VmHWM), or null. */
export function peakRssBytes(): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(
      Deno.readTextFileSync("/proc/self/status"),
    );
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
