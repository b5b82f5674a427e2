/**
 * Acks, naks and terms a message, ignoring the throw: they throw once the
 * connection is closed, and the message is redelivered then anyway.
 */
export function settle(fn: () => void): void {
  try {
    fn();
  } catch {
    // nothing to do
  }
}
