import { Column, Entity, Index, OneToMany, PrimaryColumn } from 'typeorm';
import type { Conversation } from '../conversations/conversation.entity.js';

/** An anonymous session (design document 8.1). Timestamps are set by the application for ms precision. */
@Entity('sessions')
@Index('idx_sessions_last_accessed', ['lastAccessed'])
export class Session {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id!: string;
  @Column({ name: 'created_at' }) createdAt!: Date;
  @Column({ name: 'last_accessed' }) lastAccessed!: Date;
  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true }) userAgent!: string | null;
  @Column({ name: 'ip_address', type: 'varchar', length: 64, nullable: true }) ipAddress!: string | null;
  /** Set at logout: every token of the session stops working. */
  @Column({ name: 'revoked_at', type: Date, nullable: true }) revokedAt!: Date | null;

  @OneToMany('Conversation', 'session') conversations?: Conversation[];
}
