const SNAPSHOT_KEY = 'parley.stream';

/** What this tab had shown of a running answer, so a reload can resume after the last event it saw. */
export interface StreamSnapshot {
  messageId: string;
  lastEventId: string;
  content: string;
}

/** Keeps the snapshot for this tab (sessionStorage: it survives a reload, not the tab). */
export function saveStreamSnapshot(snapshot: StreamSnapshot): void {
  try {
    sessionStorage.setItem(SNAPSHOT_KEY, JSON.stringify(snapshot));
  } catch {
    // Without storage a reload replays the answer from its start instead.
  }
}

/** The snapshot kept for answer `messageId`, if any; whatever was kept is forgotten. */
export function takeStreamSnapshot(messageId: string): StreamSnapshot | null {
  try {
    const raw = sessionStorage.getItem(SNAPSHOT_KEY);
    sessionStorage.removeItem(SNAPSHOT_KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : null;
    if (typeof parsed !== 'object' || parsed === null) return null;
    const snapshot = parsed as Partial<StreamSnapshot>;
    return snapshot.messageId === messageId && typeof snapshot.lastEventId === 'string' && typeof snapshot.content === 'string'
      ? (snapshot as StreamSnapshot) : null;
  } catch {
    return null;
  }
}
