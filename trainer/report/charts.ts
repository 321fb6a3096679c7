/**
 * Curves of a run as standalone SVG documents, drawn by Apache ECharts'
 * server-side SVG renderer (no DOM, no canvas, no network): text is SVG
 * `<text>` in the viewer's sans-serif font, so nothing is fetched at view
 * time.
 */
import * as echarts from "echarts";
import type { MetricsPoint, StepChannel } from "./run_data.ts";

const WIDTH = 760;
const HEIGHT = 320;
/** Above this many Channel-B steps the per-step markers would be a smear. */
const MAX_B_MARKERS = 300;

export const CHANNEL_COLOURS = { A: "#2563eb", B: "#dc2626", sft: "#6b7280" };

/** One line of a chart: a name and its (step, value) points. */
export interface Series {
  name: string;
  points: [number, number][];
  /** Draw points only (sparse series such as evaluations). */
  markers?: boolean;
}

function render(option: Record<string, unknown>, height = HEIGHT): string {
  const chart = echarts.init(null, null, {
    renderer: "svg",
    ssr: true,
    width: WIDTH,
    height,
  });
  try {
    chart.setOption({
      animation: false,
      backgroundColor: "#ffffff",
      ...option,
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** (step, value) points of `key` over the lines of `kind`. */
export function pointsOf(
  metrics: readonly MetricsPoint[],
  kind: string,
  key: string,
): [number, number][] {
  return metrics
    .filter((m) => m.kind === kind && Number.isFinite(m.values[key]))
    .map((m) => [m.step, m.values[key]]);
}

/**
 * A line chart over optimizer steps; Channel-B steps are marked with thin
 * vertical lines when there are few enough of them.
 */
export function lineChart(
  title: string,
  series: readonly Series[],
  o: { channels?: readonly StepChannel[]; yMax?: number } = {},
): string {
  const bSteps = (o.channels ?? []).filter((c) => c.channel === "B").map((c) =>
    c.step
  );
  const marks = bSteps.length > 0 && bSteps.length <= MAX_B_MARKERS;
  const drawn = series.filter((s) => s.points.length > 0);
  return render({
    title: {
      text: title,
      subtext: marks
        ? "thin red lines: Channel-B steps (rollout + matching); others: Channel A"
        : "",
      left: 8,
      textStyle: { fontSize: 14 },
      subtextStyle: { fontSize: 11 },
    },
    legend: { bottom: 4, left: "center", textStyle: { fontSize: 11 } },
    grid: { left: 56, right: 24, top: 64, bottom: 68 },
    xAxis: {
      type: "value",
      name: "step",
      nameLocation: "middle",
      nameGap: 22,
      minInterval: 1,
    },
    yAxis: {
      type: "value",
      scale: o.yMax === undefined,
      ...(o.yMax !== undefined ? { min: 0, max: o.yMax } : {}),
    },
    series: drawn.map((s, i) => ({
      name: s.name,
      type: "line",
      data: s.points,
      showSymbol: s.markers === true || s.points.length < 30,
      symbolSize: s.markers ? 8 : 4,
      lineStyle: { width: s.markers ? 1 : 1.5 },
      ...(i === 0 && marks
        ? {
          markLine: {
            silent: true,
            symbol: "none",
            label: { show: false },
            lineStyle: {
              color: CHANNEL_COLOURS.B,
              opacity: 0.35,
              type: "solid",
              width: 1,
            },
            data: bSteps.map((s) => ({ xAxis: s })),
          },
        }
        : {}),
    })),
  });
}

/** Which channel every step used: one coloured mark per step. */
export function channelStrip(channels: readonly StepChannel[]): string {
  const kinds = ["sft", "A", "B"] as const;
  const present = kinds.filter((k) => channels.some((c) => c.channel === k));
  return render({
    title: {
      text: "Channel per optimizer step",
      left: 8,
      textStyle: { fontSize: 14 },
    },
    legend: { top: 8, right: 8 },
    grid: { left: 56, right: 24, top: 48, bottom: 40 },
    xAxis: {
      type: "value",
      name: "step",
      nameLocation: "middle",
      nameGap: 24,
      minInterval: 1,
    },
    yAxis: { type: "category", data: present },
    series: present.map((k) => ({
      name: k === "B" ? "B (rollouts)" : k,
      type: "scatter",
      symbol: "rect",
      symbolSize: [Math.max(2, Math.min(10, 600 / channels.length)), 16],
      itemStyle: { color: CHANNEL_COLOURS[k] },
      data: channels.filter((c) => c.channel === k).map((c) => [c.step, k]),
    })),
  }, 180);
}
