// Seeds conversations and messages straight into the database the server has migrated
// (SQLite via better-sqlite3, PostgreSQL via pg), far faster than going through the API.
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';

const TEXT_USER = 'Could you explain how the relay keeps every token when the tab closes? Please be brief.';
const TEXT_ASSISTANT = 'The relay runs the generation in a service, not in the request. Each token goes to every '
  + 'listener at once and, in batches, to the database, so a closed tab neither stops nor loses the answer. '
  + 'A returning reader re-attaches with `Last-Event-ID` and gets what it missed, then the live rest.';

const sqliteDate = (d) => d.toISOString().replace('T', ' ').replace('Z', '');

/** The server's search fold (conversations/title.ts foldForSearch): what it stores in search_text. */
const fold = (text) => text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/ς/g, 'σ');

/**
 * Plans rows: `messagesPerConversation[i]` messages for conversation i of `sessionId`; an
 * assistant message's text is `assistantText(position)` when given.
 */
function plan(sessionId, messageCounts, baseTime, assistantText) {
  const conversations = [];
  const messages = [];
  messageCounts.forEach((count, ci) => {
    const id = randomUUID();
    const start = baseTime + ci * 60_000;
    conversations.push({ id, sessionId, title: `Conversation ${ci + 1}`, createdAt: new Date(start),
      updatedAt: new Date(start + count * 1000 + 1), messageCount: count, nextPosition: count });
    for (let p = 0; p < count; p++) {
      const isUser = p % 2 === 0;
      messages.push({ id: randomUUID(), conversationId: id, position: p, role: isUser ? 'user' : 'assistant',
        content: `${isUser ? TEXT_USER : (assistantText?.(p) ?? TEXT_ASSISTANT)} (#${p})`, status: 'complete',
        createdAt: new Date(start + p * 1000), tokenCount: isUser ? 20 : 60, modelName: isUser ? null : 'bench-model' });
    }
  });
  return { conversations, messages };
}

export function seedSqlite(file, sessionId, messageCounts, baseTime = Date.UTC(2026, 0, 1), { assistantText } = {}) {
  const { conversations, messages } = plan(sessionId, messageCounts, baseTime, assistantText);
  const db = new Database(file);
  db.pragma('busy_timeout = 10000');
  const insC = db.prepare(`INSERT INTO conversations (id, session_id, title, created_at, updated_at, is_active, message_count, next_position)
    VALUES (?, ?, ?, ?, ?, 1, ?, ?)`);
  const insM = db.prepare(`INSERT INTO messages (id, conversation_id, position, role, content, status, created_at, updated_at, token_count, model_name, search_text)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  db.transaction(() => {
    for (const c of conversations) insC.run(c.id, c.sessionId, c.title, sqliteDate(c.createdAt), sqliteDate(c.updatedAt), c.messageCount, c.nextPosition);
    for (const m of messages) {
      const d = sqliteDate(m.createdAt);
      insM.run(m.id, m.conversationId, m.position, m.role, m.content, m.status, d, d, m.tokenCount, m.modelName, fold(m.content));
    }
  })();
  db.exec('ANALYZE');
  db.close();
  return conversations.map((c) => c.id);
}

export async function seedPostgres(url, sessionId, messageCounts, baseTime = Date.UTC(2026, 0, 1)) {
  const { conversations, messages } = plan(sessionId, messageCounts, baseTime);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    const batch = async (rows, sqlHead, cols, toValues) => {
      for (let i = 0; i < rows.length; i += 500) {
        const part = rows.slice(i, i + 500);
        const params = [];
        const tuples = part.map((r) => {
          const vals = toValues(r);
          const ph = vals.map((v) => { params.push(v); return `$${params.length}`; });
          return `(${ph.join(', ')})`;
        });
        await client.query(`${sqlHead} (${cols}) VALUES ${tuples.join(', ')}`, params);
      }
    };
    await batch(conversations, 'INSERT INTO conversations', 'id, session_id, title, created_at, updated_at, is_active, message_count, next_position',
      (c) => [c.id, c.sessionId, c.title, c.createdAt, c.updatedAt, true, c.messageCount, c.nextPosition]);
    await batch(messages, 'INSERT INTO messages', 'id, conversation_id, position, role, content, status, created_at, updated_at, token_count, model_name, search_text',
      (m) => [m.id, m.conversationId, m.position, m.role, m.content, m.status, m.createdAt, m.createdAt, m.tokenCount, m.modelName, fold(m.content)]);
    await client.query('COMMIT');
    await client.query('ANALYZE conversations');
    await client.query('ANALYZE messages');
  } finally {
    await client.end();
  }
  return conversations.map((c) => c.id);
}

/** `count` uploaded files of `session`, each with `textChars` characters of extracted text (ASCII) and its own stored object. */
function planFiles(sessionId, count, textChars, baseTime) {
  const text = 'The relay keeps every token. '.repeat(Math.ceil(textChars / 29)).slice(0, textChars);
  return Array.from({ length: count }, (_, i) => {
    const sha = randomUUID().replace(/-/g, '').padEnd(64, '0');
    return { id: randomUUID(), sessionId, filename: `notes-${i}.txt`, fileType: '.txt', fileSize: 1000,
      storageKey: `${sessionId}_${sha}.txt`, sha256: sha, text, tokenCount: Math.round(textChars / 5), createdAt: new Date(baseTime + i * 1000) };
  });
}

export function seedSqliteFiles(file, sessionId, count, textChars, baseTime = Date.UTC(2026, 0, 1)) {
  const db = new Database(file);
  db.pragma('busy_timeout = 10000');
  const ins = db.prepare(`INSERT INTO file_uploads (id, session_id, filename, file_type, file_size, file_path, sha256, extracted_text, token_count, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  db.transaction(() => {
    for (const f of planFiles(sessionId, count, textChars, baseTime)) {
      ins.run(f.id, f.sessionId, f.filename, f.fileType, f.fileSize, f.storageKey, f.sha256, f.text, f.tokenCount, sqliteDate(f.createdAt));
    }
  })();
  db.close();
}

export async function seedPostgresFiles(url, sessionId, count, textChars, baseTime = Date.UTC(2026, 0, 1)) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const f of planFiles(sessionId, count, textChars, baseTime)) {
      await client.query(`INSERT INTO file_uploads (id, session_id, filename, file_type, file_size, file_path, sha256, extracted_text, token_count, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, [f.id, f.sessionId, f.filename, f.fileType, f.fileSize, f.storageKey, f.sha256, f.text, f.tokenCount, f.createdAt]);
    }
  } finally {
    await client.end();
  }
}

/** Creates a scratch database; returns its URL and a drop function. Throws if PostgreSQL is unreachable. */
export async function scratchPostgres(adminUrl, name) {
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
