const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a UUID in its usual text form. Run ids are UUIDs; anything else can be answered "not found" without asking the database. */
export function isUuid(s: string): boolean {
  return UUID.test(s);
}
