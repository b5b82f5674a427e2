import type { JetStreamManager } from "@nats-io/jetstream";
import { Base64UrlPaddedCodec, type ObjectStore } from "@nats-io/obj";
import { Nats, type Json } from "@offload/sdk/internal";

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

/** The stream behind the results store, and the subject of an object's metadata in it (ADR-20's layout). */
const RESULTS_STREAM = `OBJ_${Nats.resultsBucket}`;
const metaSubject = (ref: string): string => `$O.${Nats.resultsBucket}.M.${Base64UrlPaddedCodec.encode(ref)}`;

/**
 * Removes the result stored under `ref`, leaving nothing behind: the object
 * store's own delete keeps the object's metadata, marked deleted, forever (for
 * watchers; the results store has none), so that is purged too. Answers false
 * when there was no such result.
 */
export async function deleteStoredResult(results: ObjectStore, jsm: JetStreamManager, ref: string): Promise<boolean> {
  const info = await results.info(ref);
  if (info === null) return false;
  if (!info.deleted) await results.delete(ref);
  await jsm.streams.purge(RESULTS_STREAM, { filter: metaSubject(ref) });
  return !info.deleted;
}
