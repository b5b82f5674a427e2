import type { CreateRunBody } from "@offload/sdk/internal";
import type { ParametersVerdict } from "./registry.js";
import type { ParameterIssue } from "./validate.js";

/** What checking a submission asks of the registry (memory only: it sits on the submit path). */
export interface ParameterChecking {
  checkParameters(task: string, parameters: CreateRunBody["parameters"], at: string): ParametersVerdict;
}

/** Most issues one refusal lists: a batch of thousands of bad runs need not answer megabytes. */
export const MAX_ISSUES = 100;
/** Most issues the refusal's message spells out (all of them are in `issues`, up to {@link MAX_ISSUES}). */
const ISSUES_IN_MESSAGE = 5;

/** What the run API could not check about runs whose task no worker has registered. */
export const unregisteredTaskWarning = (task: string): string =>
  `no worker has registered task ${JSON.stringify(task)} yet: its parameters were not checked and its limits are not known`;

/** The verdict on a submission: refused (nothing is recorded), or taken with what could not be checked. */
export type SubmissionVerdict =
  | { ok: true; warnings: string[] }
  | { ok: false; message: string; issues: ParameterIssue[] };

/**
 * Checks the parameters of runs about to be recorded against their tasks'
 * registered input schemas. `at(i)` is where entry `i`'s parameters are in the
 * body (`parameters`, `runs.3.parameters`). Each task no worker registered is
 * warned about once.
 */
export function checkSubmission(registry: ParameterChecking, bodies: readonly CreateRunBody[], at: (index: number) => string): SubmissionVerdict {
  const unregistered = new Set<string>();
  const issues: ParameterIssue[] = [];
  const refusedTasks = new Set<string>();
  let refusedRuns = 0;
  bodies.forEach((body, i) => {
    const verdict = registry.checkParameters(body.task, body.parameters, at(i));
    if (!verdict.registered) {
      unregistered.add(body.task);
    } else if (verdict.issues.length) {
      refusedRuns++;
      refusedTasks.add(body.task);
      issues.push(...verdict.issues);
    }
  });
  if (issues.length === 0) return { ok: true, warnings: [...unregistered].map(unregisteredTaskWarning) };
  const listed = issues.slice(0, ISSUES_IN_MESSAGE).map((i) => `${i.path}: ${i.message}`);
  if (issues.length > ISSUES_IN_MESSAGE) listed.push(`and ${issues.length - ISSUES_IN_MESSAGE} more`);
  const tasks = [...refusedTasks].map((t) => JSON.stringify(t)).join(", ");
  const what =
    bodies.length === 1
      ? `parameters do not match the input schema registered for task ${tasks}`
      : `the parameters of ${refusedRuns} of ${bodies.length} runs do not match the input schema registered for ${refusedTasks.size === 1 ? "task" : "tasks"} ${tasks}; nothing was recorded`;
  return { ok: false, message: `${what}: ${listed.join("; ")}`, issues: issues.slice(0, MAX_ISSUES) };
}
