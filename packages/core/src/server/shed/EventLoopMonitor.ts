/**
 * Event-loop pressure, measured as @fastify/under-pressure measures it: every `sampleIntervalMs`
 * (default 1000, at least the 10 ms histogram resolution) the mean event-loop delay of the
 * interval minus the resolution (`perf_hooks.monitorEventLoopDelay`), and the event-loop
 * utilisation of the interval (`performance.eventLoopUtilization`).
 */
import {
  type EventLoopUtilization,
  type IntervalHistogram,
  monitorEventLoopDelay,
  performance,
} from 'node:perf_hooks';

const RESOLUTION_MS = 10;

export class EventLoopMonitor {
  /** Mean event-loop delay over the last interval, ms. */
  delayMs = 0;
  /** Event-loop utilisation over the last interval, 0-1. */
  utilization = 0;
  readonly #histogram: IntervalHistogram;
  #elu: EventLoopUtilization;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(sampleIntervalMs: number) {
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#histogram.enable();
    this.#elu = performance.eventLoopUtilization();
    this.#timer = setInterval(() => this.sample(), Math.max(RESOLUTION_MS, sampleIntervalMs));
    this.#timer.unref();
  }

  /** Takes a sample now (the timer calls it every interval). */
  sample(): void {
    const mean = this.#histogram.mean / 1e6 - RESOLUTION_MS;
    this.delayMs = Number.isNaN(mean) ? 0 : Math.max(0, mean);
    this.#histogram.reset();
    const now = performance.eventLoopUtilization();
    this.utilization = performance.eventLoopUtilization(now, this.#elu).utilization;
    this.#elu = now;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }
}
