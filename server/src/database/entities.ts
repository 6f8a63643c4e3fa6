import { Conversation } from '../conversations/conversation.entity.js';
import { Message } from '../conversations/message.entity.js';
import { FileUpload } from '../files/file-upload.entity.js';
import { Session } from '../sessions/session.entity.js';

/** Every entity, in one list shared by the app, the migration generator and the schema test. */
export const ENTITIES = [Session, Conversation, Message, FileUpload];
