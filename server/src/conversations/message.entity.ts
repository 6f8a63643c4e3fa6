import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import type { Conversation } from './conversation.entity.js';

export type MessageRole = 'user' | 'assistant' | 'system';
export const MESSAGE_STATUSES = ['streaming', 'complete', 'stopped', 'interrupted', 'failed'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];
export type Feedback = 'positive' | 'negative';

@Entity('messages')
@Index('idx_messages_conversation_created', ['conversationId', 'createdAt'])
@Index('idx_messages_conversation_position', ['conversationId', 'position'], { unique: true })
// Partial: only the rows their queries look for (a streaming reply; a message sent with an
// Idempotency-Key). Every other row, most of them, is written without touching these two
// indexes: a first message's turn writes 13 pages to SQLite's log instead of 15.4.
@Index('idx_messages_streaming_lease', ['status', 'leaseExpiresAt'], { where: `"status" = 'streaming'` })
@Index('idx_messages_idempotency', ['conversationId', 'idempotencyKey'], { where: '"idempotency_key" IS NOT NULL' })
export class Message {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id!: string;
  @Column({ name: 'conversation_id', type: 'varchar', length: 36 }) conversationId!: string;
  /** Order within the conversation (0, 1, 2, …); pages are fetched by it. */
  @Column({ type: 'int' }) position!: number;
  @Column({ type: 'varchar', length: 16 }) role!: MessageRole;
  @Column({ type: 'text', default: '' }) content!: string;
  @Column({ type: 'varchar', length: 16, default: 'complete' }) status!: MessageStatus;
  @Column({ name: 'created_at' }) createdAt!: Date;
  @Column({ name: 'updated_at' }) updatedAt!: Date;
  @Column({ name: 'token_count', type: 'int', nullable: true }) tokenCount!: number | null;
  @Column({ name: 'model_name', type: 'varchar', length: 200, nullable: true }) modelName!: string | null;
  @Column({ name: 'finish_reason', type: 'varchar', length: 32, nullable: true }) finishReason!: string | null;
  @Column({ name: 'error_code', type: 'varchar', length: 64, nullable: true }) errorCode!: string | null;
  @Column({ name: 'prompt_tokens', type: 'int', nullable: true }) promptTokens!: number | null;
  @Column({ name: 'completion_tokens', type: 'int', nullable: true }) completionTokens!: number | null;
  @Column({ type: 'varchar', length: 16, nullable: true }) feedback!: Feedback | null;
  @Column({ name: 'feedback_comment', type: 'text', nullable: true }) feedbackComment!: string | null;
  @Column({ name: 'feedback_at', type: Date, nullable: true }) feedbackAt!: Date | null;
  /** The instance generating this reply and how long its claim holds (crash recovery). */
  @Column({ name: 'owner_instance', type: 'varchar', length: 64, nullable: true }) ownerInstance!: string | null;
  @Column({ name: 'lease_expires_at', type: Date, nullable: true }) leaseExpiresAt!: Date | null;
  /** A retried send with the same Idempotency-Key returns this user message's generation. */
  @Column({ name: 'idempotency_key', type: 'varchar', length: 128, nullable: true }) idempotencyKey!: string | null;
  /**
   * An answer's word of what the model did not see of its question's files: the start event's `context`
   * (chat-events.ts ContextNotice) as JSON, null when every file fit.
   */
  @Column({ name: 'context_notice', type: 'text', nullable: true }) contextNotice!: string | null;
  /** For a regenerated answer: the answer it replaces once it completes. */
  @Column({ name: 'replaces_id', type: 'varchar', length: 36, nullable: true }) replacesId!: string | null;

  /**
   * The text as search compares it (foldForSearch of `content`: any case, no accents), written once the
   * text is final (a question when sent or edited, an answer when it ends); null while an answer streams.
   * Matched by SQL the same way on both databases; never read back into an entity.
   */
  @Column({ name: 'search_text', type: 'text', nullable: true, select: false }) searchText?: string | null;

  @ManyToOne('Conversation', 'messages', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'conversation_id' })
  conversation?: Conversation;
}
