const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a UUID in its usual text form. Run ids are UUIDs; anything else can be answered "not found" without asking the database. */
export function isUuid(s: string): boolean {
  return UUID.test(s);
}

/** A `uuid[]` parameter, as the array literal both drivers pass through as text. Throws on anything but UUIDs. */
export function uuidArray(ids: readonly string[]): string {
  // Checked here too: anything else in the literal would change the array, not just fail.
  const bad = ids.find((id) => !isUuid(id));
  if (bad !== undefined) throw new Error(`not a run id: ${bad}`);
  return `{${[...new Set(ids)].join(",")}}`;
}
