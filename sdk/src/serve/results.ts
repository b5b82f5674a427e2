/**
 * Where a completed run's result goes: into its COMPLETED event when small
 * enough, else into the results object store under the run id, with the
 * event carrying only a reference. A result never makes an event too large
 * for the server to carry (with room for the event around it), whatever the
 * configured inline limit.
 */
import type { ObjectStore } from "@nats-io/obj";
import type { Json, RunEvent } from "../protocol/index.js";
import type { RunInfo } from "./index.js";

// NATS servers' default max payload, for when the server has not said its own.
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
// The event wraps the result: leave room for its other fields.
const EVENT_OVERHEAD_BYTES = 4096;

export class ResultStore {
  readonly #store: ObjectStore;
  readonly #inlineLimitBytes: number;
  readonly #maxPayload: () => number | undefined;

  /** `maxPayload` is read per result: the server's limit may change on reconnect. */
  constructor(store: ObjectStore, inlineLimitBytes: number, maxPayload: () => number | undefined) {
    this.#store = store;
    this.#inlineLimitBytes = inlineLimitBytes;
    this.#maxPayload = maxPayload;
  }

  /**
   * The fields of a COMPLETED event whose result goes inline, or undefined when it must be stored first
   * ({@link eventFields}). Synchronous: most results are small, and an await costs every run.
   */
  inlineFields(json: string): Partial<RunEvent> | undefined {
    const max = this.#maxPayload() ?? DEFAULT_MAX_PAYLOAD;
    // Measured without copying: most results are small and go inline.
    if (Buffer.byteLength(json) <= Math.min(this.#inlineLimitBytes, max - EVENT_OVERHEAD_BYTES)) return { result: JSON.parse(json) as Json };
    return undefined;
  }

  /** The fields of a COMPLETED event: the result itself, or a reference to where it was stored. */
  async eventFields(info: RunInfo, json: string): Promise<Partial<RunEvent>> {
    const inline = this.inlineFields(json);
    if (inline) return inline;
    await this.#store.putBlob({ name: info.runId, description: `result of ${info.task} run ${info.runId}` }, Buffer.from(json));
    return { resultRef: info.runId };
  }
}
