import { Column, Entity, Index, JoinColumn, ManyToOne, OneToMany, PrimaryColumn } from 'typeorm';
import type { Session } from '../sessions/session.entity.js';
import type { Message } from './message.entity.js';

// B-tree indexes serve both scan directions, so the document's "updated_at DESC" indexes are
// these (TypeORM cannot declare a per-column sort order portably).
@Entity('conversations')
@Index('idx_conversations_session_updated', ['sessionId', 'updatedAt'])
@Index('idx_active_conversations', ['sessionId', 'isActive', 'updatedAt'])
export class Conversation {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id!: string;
  @Column({ name: 'session_id', type: 'varchar', length: 36 }) sessionId!: string;
  @Column({ type: 'varchar', length: 200, nullable: true }) title!: string | null;
  @Column({ name: 'created_at' }) createdAt!: Date;
  @Column({ name: 'updated_at' }) updatedAt!: Date;
  @Column({ name: 'is_active', default: true }) isActive!: boolean;
  @Column({ name: 'message_count', type: 'int', default: 0 }) messageCount!: number;
  /** Positions are allocated from this counter; it never goes down, so positions stay unique. */
  @Column({ name: 'next_position', type: 'int', default: 0 }) nextPosition!: number;

  @ManyToOne('Session', 'conversations', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id' })
  session?: Session;

  @OneToMany('Message', 'conversation') messages?: Message[];
}
