import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import type { Conversation } from '../conversations/conversation.entity.js';
import type { Message } from '../conversations/message.entity.js';
import type { Session } from '../sessions/session.entity.js';

@Entity('file_uploads')
@Index('idx_file_uploads_message', ['messageId'])
@Index('idx_file_uploads_session_created', ['sessionId', 'createdAt'])
@Index('idx_file_uploads_conversation', ['conversationId'])
@Index('idx_file_uploads_storage_key', ['storageKey'])
export class FileUpload {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id!: string;
  @Column({ name: 'session_id', type: 'varchar', length: 36 }) sessionId!: string;
  @Column({ name: 'conversation_id', type: 'varchar', length: 36, nullable: true }) conversationId!: string | null;
  @Column({ name: 'message_id', type: 'varchar', length: 36, nullable: true }) messageId!: string | null;
  /** Sanitized original name, metadata only: never used as a path. */
  @Column({ type: 'varchar', length: 255 }) filename!: string;
  /** Lower-case extension with its dot, e.g. ".pdf". */
  @Column({ name: 'file_type', type: 'varchar', length: 16 }) fileType!: string;
  @Column({ name: 'file_size', type: 'int' }) fileSize!: number;
  /** Storage key `{session_id}_{sha256}{ext}` relative to the uploads folder (the document's file_path). */
  @Column({ name: 'file_path', type: 'varchar', length: 255 }) storageKey!: string;
  @Column({ type: 'varchar', length: 64 }) sha256!: string;
  @Column({ name: 'extracted_text', type: 'text', default: '' }) extractedText!: string;
  @Column({ name: 'token_count', type: 'int', default: 0 }) tokenCount!: number;
  @Column({ type: 'int', nullable: true }) pages!: number | null;
  /** Where the file stands among its message's attachments (the order of the request's file_ids); null until attached. */
  @Column({ name: 'attach_position', type: 'int', nullable: true }) attachPosition!: number | null;
  @Column({ name: 'created_at' }) createdAt!: Date;

  @ManyToOne('Session', { onDelete: 'CASCADE' }) @JoinColumn({ name: 'session_id' }) session?: Session;
  // Deleting a conversation deletes its files (FilesService deletes their rows and bytes first; the schema cascades too).
  @ManyToOne('Conversation', { onDelete: 'CASCADE' }) @JoinColumn({ name: 'conversation_id' }) conversation?: Conversation;
  @ManyToOne('Message', { onDelete: 'SET NULL' }) @JoinColumn({ name: 'message_id' }) message?: Message;
}
