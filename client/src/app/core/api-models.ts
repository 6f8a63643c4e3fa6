/** Shapes of docs/api-contract.md, as the SPA reads them. */

export type MessageRole = 'user' | 'assistant' | 'system';
export type MessageStatus = 'streaming' | 'complete' | 'stopped' | 'interrupted' | 'failed';
export type Feedback = 'positive' | 'negative';

export interface Attachment {
  id: string;
  filename: string;
  file_type: string;
  file_size: number;
}

export interface Message {
  id: string;
  conversation_id: string;
  position: number;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  created_at: string;
  updated_at: string;
  token_count: number | null;
  model_name: string | null;
  finish_reason: string | null;
  error_code: string | null;
  feedback: Feedback | null;
  feedback_comment: string | null;
  files: Attachment[];
  /** An answer: what the model did not see, of its question's files and the conversation's start (null or absent when it saw all). */
  context?: ContextNotice | null;
}

/**
 * Of a question's files: those cut short to fit the model's context (it saw their beginning) and those left out;
 * and how many of the conversation's first messages the model did not see (they no longer fit).
 */
export interface ContextNotice {
  truncated_files?: string[];
  omitted_files?: string[];
  earlier_messages_omitted?: number;
}

export interface Conversation {
  id: string;
  session_id: string;
  title: string | null;
  created_at: string;
  updated_at: string;
  is_active: boolean;
  message_count: number;
  /** In search results only: the conversation was found by one of its messages, not by its title. */
  match?: SearchMatch;
}

/** Where a search found a conversation: its newest message containing the text, and a line of it around the match. */
export interface SearchMatch {
  message_id: string;
  role: 'user' | 'assistant' | 'system';
  /** The match is text.slice(start, start + length). */
  snippet: { text: string; start: number; length: number };
}

export interface ConversationPage {
  conversations: Conversation[];
  total: number;
  limit: number;
  offset: number;
}

export interface MessagePage {
  messages: Message[];
  has_more: boolean;
  /** Newer messages exist (a page opened around a message): fetch them with ?after=<last position>. */
  has_newer: boolean;
}

export interface ConversationDetail extends MessagePage {
  conversation: Conversation;
}

export interface ChatConfig {
  provider: 'openai' | 'offline';
  model: string;
  is_demo: boolean;
  max_message_chars: number;
  max_upload_bytes: number;
  allowed_extensions: string[];
}

export interface UploadedFile {
  file_id: string;
  filename: string;
  file_type: string;
  file_size: number;
  extracted_text: string;
  extracted_chars: number;
  token_count: number;
  pages?: number;
}

export interface FeedbackResult {
  message_id: string;
  feedback: Feedback;
  comment: string | null;
}
