/** Parsers of option values that several commands share; each says what a right value looks like. */
import { InvalidArgumentError } from "commander";
import { PRIORITY, type Json } from "../protocol/index.js";
import { UsageError } from "./exit-codes.js";

/** A whole number of at least 1 (`--limit`, `--timeout`, `--starting-deadline`). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a whole number of at least 1.");
  return n;
}

/** A run's priority, 1 (first) … 5 (last). */
export function priority(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < PRIORITY.first || n > PRIORITY.last) throw new InvalidArgumentError(`must be a whole number from ${PRIORITY.first} (first) to ${PRIORITY.last} (last).`);
  return n;
}

/** `--params` as JSON, or a usage error that says how to quote it. */
export function parseParams(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new UsageError(`--params is not JSON: ${(err as Error).message}. Quote it for the shell, e.g. --params '{"width":200}'`);
  }
}
