import type { JetStreamManager } from "@nats-io/jetstream";
import { Nats, TaskNameSchema } from "@offload/sdk/internal";

/** A task's load as its shared consumer sees it. */
export interface ConsumerLoad {
  /** Messages not yet delivered to any worker. */
  backlog: number;
  /** Messages delivered and not yet acked. */
  inFlight: number;
}

const PREFIX = Nats.taskConsumer("");

/** The load of every task that has a shared task consumer, by task name (one listing call, however many tasks). */
export async function consumerLoads(jsm: JetStreamManager): Promise<Map<string, ConsumerLoad>> {
  const out = new Map<string, ConsumerLoad>();
  for await (const ci of jsm.consumers.list(Nats.tasksStream)) {
    const name = ci.config.durable_name ?? ci.name;
    const task = name.slice(PREFIX.length);
    // Someone else's consumer that merely looks like ours.
    if (!name.startsWith(PREFIX) || !TaskNameSchema.safeParse(task).success) continue;
    out.set(task, { backlog: ci.num_pending, inFlight: ci.num_ack_pending });
  }
  return out;
}
