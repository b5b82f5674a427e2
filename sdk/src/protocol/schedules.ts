import { z } from "zod";
import { TaskNameSchema } from "./names.js";
import { LimitKeySchema, PrioritySchema } from "./flow.js";
import { JsonSchema, NamespaceSchema } from "./run.js";

const isoDate = z.iso.datetime({ offset: true });

/** A schedule's key: unique within its namespace; it names the schedule in `/v1/schedules/:key`. */
export const ScheduleKeySchema = z
  .string()
  .min(1)
  // Room for `taskschedule.` and a Kubernetes object name (253), what the controller names its schedules.
  .max(300)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, "a schedule key uses letters, digits, '.', '_', ':' and '-', and starts with a letter or digit");

/** What a schedule does when a time comes while the run it started last has not finished (CronJob's values). */
export const ConcurrencyPolicySchema = z
  .enum(["Allow", "Forbid", "Replace"])
  .describe("Allow: start the next run anyway. Forbid: skip this time. Replace: cancel the unfinished run, then start the next.");
export type ConcurrencyPolicy = z.infer<typeof ConcurrencyPolicySchema>;

/** The body of `PUT /v1/schedules/:key` (creates or replaces the schedule). */
export const PutScheduleBodySchema = z.strictObject({
  task: TaskNameSchema,
  schedule: z
    .string()
    .min(1)
    .max(200)
    .describe("A cron expression: five fields (minute hour day-of-month month day-of-week), or six with seconds first; `@hourly`, `@daily` … too."),
  timeZone: z.string().max(64).optional().describe("An IANA time zone, e.g. `Europe/Paris`. Unset: UTC."),
  parameters: JsonSchema.optional(),
  concurrencyPolicy: ConcurrencyPolicySchema.default("Allow"),
  suspend: z.boolean().default(false).describe("True: no new runs until it is false again (times passed meanwhile are missed)."),
  startingDeadlineSeconds: z
    .number()
    .int()
    .positive()
    .max(366 * 86_400)
    .optional()
    .describe("A time missed (the run API was down) still fires if at most this late; unset: the latest missed time always fires, once."),
  priority: PrioritySchema.optional(),
  concurrencyKey: LimitKeySchema.optional().describe("The concurrency key of the runs it starts (the SDK's schedule() computes it from the task's `concurrency.key`)."),
  rateLimitKey: LimitKeySchema.optional().describe("The rate-limit key of the runs it starts (the SDK's schedule() computes it from the task's `rateLimit.key`)."),
  namespace: NamespaceSchema.optional().describe("The namespace of the schedule and its runs. Unset: as for `POST /v1/runs`."),
});
export type PutScheduleBody = z.input<typeof PutScheduleBodySchema>;

/** A schedule, as the run API returns it. */
export const ScheduleSchema = z.object({
  key: ScheduleKeySchema,
  namespace: z.string(),
  task: TaskNameSchema,
  schedule: z.string(),
  timeZone: z.string().describe("The IANA time zone the schedule is read in (`UTC` when none was given)."),
  parameters: JsonSchema.nullable(),
  concurrencyPolicy: ConcurrencyPolicySchema,
  suspend: z.boolean(),
  startingDeadlineSeconds: z.number().int().positive().nullable(),
  priority: PrioritySchema.nullable(),
  concurrencyKey: z.string().nullable(),
  rateLimitKey: z.string().nullable(),
  createdAt: isoDate,
  updatedAt: isoDate,
  lastScheduleTime: isoDate.nullable().describe("The last scheduled time that started a run."),
  lastRunId: z.string().nullable().describe("The run started at `lastScheduleTime`."),
  nextScheduleTime: isoDate.nullable().describe("The next time it fires; null while suspended."),
});
export type Schedule = z.infer<typeof ScheduleSchema>;

export const ListSchedulesResponseSchema = z.object({ schedules: z.array(ScheduleSchema) });

/** Query of the schedule calls: the namespace (as for runs). */
export const ScheduleQuerySchema = z.strictObject({ namespace: NamespaceSchema.optional() });

/** The idempotency key of the run a schedule starts for one time: the same on every replica, so each time fires one run. */
export const scheduleRunKey = (key: string, time: Date): string => `schedule:${key}:${time.toISOString()}`;
