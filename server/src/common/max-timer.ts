/**
 * The longest delay Node's setTimeout and setInterval keep: 2^31 - 1 ms, about 24.8 days. Above it Node
 * warns (TimeoutOverflowWarning) and fires after 1 ms instead, so a longer setting would run its timer
 * without pause. Every *_MS setting is at most this (config/app-config.ts); a delay derived from one
 * (a multiple, a sum) is capped at it where it becomes a timer.
 */
export const MAX_TIMER_MS = 2_147_483_647;
