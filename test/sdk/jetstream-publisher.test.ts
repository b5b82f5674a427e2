/**
 * JetStreamPublisher (what the run API publishes task messages with): against a
 * real nats-server, confirmations as js.publish() gives them, a duplicate
 * message id reported as one, a subject no stream takes, a confirmation that
 * never comes, and a lost connection failing what is pending at once.
 */
import { randomUUID } from "node:crypto";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, errors, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JetStreamPublisher } from "../../sdk/src/nats/publisher.js";
import { startNats, type NatsServer } from "../support/nats.js";

let nats: NatsServer | undefined;
let nc: NatsConnection | undefined;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100, noAsyncTraces: true });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

/** A stream of its own for one test: its subject prefix. */
async function freshStream(): Promise<{ name: string; subject: string }> {
  const id = randomUUID().slice(0, 8);
  const name = `PUB_${id}`;
  await jsm.streams.add({ name, subjects: [`pub.${id}.>`] });
  return { name, subject: `pub.${id}` };
}

describe("JetStreamPublisher", () => {
  it("resolves each publish with JetStream's confirmation, and the messages are stored in order", async () => {
    const { name, subject } = await freshStream();
    const publisher = new JetStreamPublisher(nc!);
    const acks = await Promise.all(["a", "b", "c"].map((body) => publisher.publish(`${subject}.x`, body)));
    expect(acks.map((a) => [a.stream, a.seq, a.duplicate])).toEqual([
      [name, 1, false],
      [name, 2, false],
      [name, 3, false],
    ]);
    const stored = await jsm.streams.getMessage(name, { seq: 2 });
    expect(stored?.string()).toBe("b");
    expect(publisher.pending).toBe(0);
    publisher.close();
  });

  it("reports a second publish with the same message id as a duplicate, stored once", async () => {
    const { name, subject } = await freshStream();
    const publisher = new JetStreamPublisher(nc!);
    const first = await publisher.publish(`${subject}.x`, "once", { msgID: "run-1" });
    const again = await publisher.publish(`${subject}.x`, "twice", { msgID: "run-1" });
    expect(first.duplicate).toBe(false);
    expect(again).toMatchObject({ stream: name, seq: first.seq, duplicate: true });
    expect((await jsm.streams.info(name)).state.messages).toBe(1);
    publisher.close();
  });

  it("rejects a publish to a subject no stream takes with NoRespondersError", async () => {
    const publisher = new JetStreamPublisher(nc!);
    await expect(publisher.publish(`nowhere.${randomUUID()}`, "x")).rejects.toBeInstanceOf(errors.NoRespondersError);
    publisher.close();
  });

  it("rejects with TimeoutError when no confirmation comes, and forgets the publish", async () => {
    // A plain subscriber takes the message and never answers: what a stuck server looks like to the publisher.
    const subject = `silent.${randomUUID()}`;
    const silent = nc!.subscribe(subject);
    await nc!.flush();
    const publisher = new JetStreamPublisher(nc!, { timeoutMs: 200 });
    await expect(publisher.publish(subject, "x")).rejects.toBeInstanceOf(errors.TimeoutError);
    expect(publisher.pending).toBe(0);
    silent.unsubscribe();
    publisher.close();
  });

  it("rejects pending publishes with ClosedConnectionError at close(), and later ones too", async () => {
    const subject = `silent.${randomUUID()}`;
    const silent = nc!.subscribe(subject);
    await nc!.flush();
    const publisher = new JetStreamPublisher(nc!, { timeoutMs: 600_000 });
    const pending = publisher.publish(subject, "x");
    publisher.close();
    await expect(pending).rejects.toBeInstanceOf(errors.ClosedConnectionError);
    await expect(publisher.publish(subject, "y")).rejects.toBeInstanceOf(errors.ClosedConnectionError);
    silent.unsubscribe();
  });

  // Last: it restarts the server.
  it("fails publishes pending when the connection is lost at once (not at their timeout), and publishes again once it is back", async () => {
    const { name, subject } = await freshStream();
    const silentSubject = `silent.${randomUUID()}`;
    const silent = nc!.subscribe(silentSubject);
    await nc!.flush();
    // A timeout far beyond the test's own: only the loss can end this publish in time.
    const publisher = new JetStreamPublisher(nc!, { timeoutMs: 600_000 });
    const pending = publisher.publish(silentSubject, "x");
    const outcome = pending.then(
      () => "confirmed",
      (err: unknown) => err,
    );
    const reconnected = (async () => {
      for await (const s of nc!.status()) if (s.type === "reconnect") return;
    })();
    let whileDown: unknown;
    await nats!.restart(async () => {
      // The loss is seen: the pending publish failed, and a new one fails at once rather than being buffered.
      expect(await outcome).toBeInstanceOf(errors.ConnectionError);
      whileDown = await publisher.publish(`${subject}.x`, "down").catch((err: unknown) => err);
    });
    expect(whileDown).toBeInstanceOf(errors.ConnectionError);
    expect(publisher.pending).toBe(0);
    // Back: the reply subscription is renewed with the connection.
    await reconnected;
    const ack = await publisher.publish(`${subject}.x`, "back");
    expect(ack).toMatchObject({ stream: name, duplicate: false });
    silent.unsubscribe();
    publisher.close();
  });
});
