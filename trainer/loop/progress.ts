/**
 * Training progress on stderr: a single redrawn bar with ETA on a terminal,
 * plain log lines otherwise (CI logs, pipes). Hand-written because the npm
 * progress-bar packages draw through Node stream APIs, while all we need is
 * one `\r`-rewritten line.
 */

export interface ProgressOptions {
  total: number;
  /** Start value (a resumed run starts at its restored step). */
  start: number;
  /** Force TTY mode (default: stderr is a terminal). */
  tty?: boolean;
  /** Where output goes (default: stderr). */
  write?: (s: string) => void;
  /** What is counted, in plain log lines (default "step"). */
  label?: string;
}

/** "1h02m", "3m05s", "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

export class Progress {
  readonly tty: boolean;
  private t0 = performance.now();
  private drawn = false;
  private write: (s: string) => void;

  constructor(private o: ProgressOptions) {
    this.tty = o.tty ?? Deno.stderr.isTerminal();
    const enc = new TextEncoder();
    this.write = o.write ?? ((s) => Deno.stderr.writeSync(enc.encode(s)));
  }

  /** Estimated seconds left after `done` of `total` steps. */
  eta(done: number): number {
    const run = done - this.o.start;
    if (run <= 0) return NaN;
    const per = (performance.now() - this.t0) / 1000 / run;
    return per * (this.o.total - done);
  }

  /** Redraws the bar (TTY) or, when `logLine` is given, prints it (plain). */
  update(done: number, summary: string, logLine = false): void {
    const eta = formatDuration(this.eta(done));
    if (this.tty) {
      const width = 24;
      const fill = Math.round(width * done / Math.max(1, this.o.total));
      const bar = "#".repeat(fill) + "-".repeat(width - fill);
      this.write(
        `\r\x1b[2K[${bar}] ${done}/${this.o.total} ${summary} eta ${eta}`,
      );
      this.drawn = true;
    } else if (logLine) {
      this.write(
        `${
          this.o.label ?? "step"
        } ${done}/${this.o.total} ${summary} eta ${eta}\n`,
      );
    }
  }

  /** Prints a message without breaking the bar. */
  log(line: string): void {
    if (this.tty && this.drawn) this.write("\r\x1b[2K");
    this.write(line + "\n");
    this.drawn = false;
  }

  done(): void {
    if (this.tty && this.drawn) this.write("\n");
    this.drawn = false;
  }
}
