import type { ObjectStore } from "@nats-io/obj";
import type { Json } from "@offload/sdk/internal";

/**
 * A result a worker put in the results store under `ref` (the run id), or
 * undefined when it is gone (deleted, or never written). The object holds the
 * result's JSON text, as a worker wrote it.
 */
export async function readStoredResult(results: ObjectStore, ref: string): Promise<{ value: Json } | undefined> {
  const bytes = await results.getBlob(ref);
  if (bytes === null) return undefined;
  return { value: JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) as Json };
}
