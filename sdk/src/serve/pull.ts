/**
 * The pull loop of one task. It fetches only as many messages as there are
 * free slots, so no message waits in a buffer while its ack wait runs. A
 * task that found nothing holds no slot while idle: it waits for a hint that
 * there may be work (a nudge from the run API, or its consumer
 * showing pending or unacked messages), so that idle tasks never starve busy
 * ones.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type Consumer, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { ensureStreams } from "../nats/layout.js";
import { Nats } from "../protocol/index.js";
import type { Task } from "../task.js";
import type { Hint } from "./hint.js";
import type { Slots } from "./slots.js";
import { ensureTaskConsumer, type TaskConsumerSettings } from "./streams.js";
import { setImmediate as turn, setTimeout as sleep } from "node:timers/promises";
import { settle } from "./settle.js";

const FETCH_EXPIRES_MS = 2_000;
// An idle task's probe holds a slot while it waits, so it waits less.
const PROBE_EXPIRES_MS = 1_000;
/**
 * A message released by a stopping worker is redelivered after this delay:
 * longer than a fetch lives, since nats-server keeps delivering into pull
 * requests until they expire, even once the client stopped listening.
 */
export const RELEASE_DELAY_MS = FETCH_EXPIRES_MS + 500;
// How often an idle task checks its consumer for work no hint announced (redeliveries).
const IDLE_CHECK_MS = 3_000;

/** What a pull loop needs from the server that runs it. */
export interface PullDeps {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly slots: Slots;
  /** Most messages one fetch asks for (once the task is busy). */
  readonly concurrency: number;
  /**
   * Whether the loops of other tasks take from the same {@link slots}. Then,
   * after a fetch that did not fill, the next asks for about twice the runs
   * the task had going at once, not every free slot (see {@link pullLoop}).
   */
  readonly shared: boolean;
  /** For re-creating the task's consumer should fetching fail. */
  readonly consumerSettings: TaskConsumerSettings;
  readonly log: Logger;
  /** True once the server is stopping: the loop takes no more runs and ends. */
  stopping(): boolean;
  /** Runs of the task this process has in flight. */
  inFlight(task: string): number;
  /** Starts a fetched message's run; it owns one of the slots taken. */
  launch(task: Task, msg: JsMsg): void;
}

/** Pulls `task`'s runs until the server stops. `hint` is set when there may be work (or to wake the loop to stop). */
export async function pullLoop(task: Task, hint: Hint, deps: PullDeps): Promise<void> {
  const { nc, js, slots, stopping } = deps;
  const log = deps.log.child({ task: task.name });
  // The run API nudges a task's workers when it publishes work for it: an
  // empty message, so a pool of workers is not sent a copy of every payload.
  const sub = nc.subscribe(Nats.nudgeSubject(task.name), { callback: () => hint.set() });
  // Start idle: a task with no backlog should not hold slots other tasks' backlog could use.
  let idle = true;
  // The most slots the next busy fetch takes. A fetch holds the slots it has not filled until it ends (up to
  // FETCH_EXPIRES_MS): a task that gets one run at a time (a concurrency limit of 1, a trickle) used to hold every
  // free slot of a worker it shares with other tasks, whose runs then waited up to that long to start. So, with
  // other tasks beside it, a fetch that did not fill (and the probe that found a task's first run) is followed by
  // one for twice the runs the task had going at once; a fetch that filled (a backlog) by one for every free slot,
  // as a task alone always takes.
  let want = deps.concurrency;
  let consumer: Consumer | undefined;
  try {
    while (!stopping()) {
      if (idle && !hint.isSet && !(await mayHaveWork(task, deps))) {
        await hint.wait(IDLE_CHECK_MS);
        continue;
      }
      const probe = idle;
      let taken = await slots.take(probe ? 1 : want);
      if (taken === 0) break;
      if (!probe && taken < want) {
        // Runs end in bunches (one event batch's confirmation ends them all), and the first slot given back wakes this
        // loop: wait out the current turn so that one fetch asks for every slot freed in it, not one fetch per slot.
        await turn();
        taken += slots.takeNow(want - taken);
      }
      hint.clear();
      let used = 0;
      let peak = 0;
      let returned = false;
      const giveBack = (): void => {
        if (returned) return;
        returned = true;
        slots.give(taken - used);
      };
      try {
        consumer ??= await js.consumers.get(Nats.tasksStream, Nats.taskConsumer(task.name));
        const batch = await consumer.fetch({ max_messages: taken, expires: probe ? PROBE_EXPIRES_MS : FETCH_EXPIRES_MS });
        for await (const msg of batch) {
          // Not started here: hand it on (it counts as a delivery, so its attempt number skips one).
          if (stopping() || used >= taken) {
            settle(() => msg.nak(RELEASE_DELAY_MS));
            continue;
          }
          used++;
          deps.launch(task, msg);
          if (deps.shared) peak = Math.max(peak, deps.inFlight(task.name));
        }
      } catch (err) {
        if (stopping()) break;
        // Back off without holding the slots: other tasks may use them meanwhile.
        giveBack();
        log.warn({ err }, "fetching runs failed; trying again");
        consumer = undefined;
        await sleep(1000);
        await repairConsumer(task, log, deps);
      } finally {
        giveBack();
      }
      idle = used === 0;
      if (deps.shared) want = used === taken && !probe ? deps.concurrency : Math.min(deps.concurrency, Math.max(1, 2 * peak));
    }
  } finally {
    sub.unsubscribe();
  }
}

// Whether an idle task should probe: messages not yet delivered, or
// delivered but unacked beyond our own runs (a dead worker's, due for redelivery).
async function mayHaveWork(task: Task, deps: PullDeps): Promise<boolean> {
  try {
    const info = await deps.jsm.consumers.info(Nats.tasksStream, Nats.taskConsumer(task.name));
    return info.num_pending > 0 || info.num_ack_pending > deps.inFlight(task.name);
  } catch {
    return true;
  }
}

// The stream or consumer may have been deleted (or never made, if NATS lost them): make them again.
async function repairConsumer(task: Task, log: Logger, deps: PullDeps): Promise<void> {
  if (deps.stopping() || deps.nc.isClosed()) return;
  try {
    const jsm = await jetstreamManager(deps.nc);
    await ensureStreams(jsm);
    await ensureTaskConsumer(jsm, task.name, deps.consumerSettings);
  } catch (err) {
    log.debug({ err }, "could not ensure the task consumer");
  }
}
