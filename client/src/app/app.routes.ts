import type { Routes } from '@angular/router';
import { ChatView } from './chat/chat-view';

export const routes: Routes = [
  { path: '', component: ChatView, title: 'Parley' },
  { path: 'c/:id', component: ChatView, title: 'Parley' },
  { path: '**', redirectTo: '' },
];
