// Strings that go into records. The log stores them as UTF-8, which cannot hold a lone UTF-16
// surrogate: it would be written as U+FFFD, so the string the live state holds and the one a
// replay reads back would differ (and two job ids could become one, which a replay refuses).
// Client text is therefore checked before it reaches a record, and text the server shortens is
// never cut inside a surrogate pair.

/** True when `text` has no lone surrogate (String.prototype.isWellFormed, ES2024, Node ≥ 20). */
export function isWellFormed(text: string): boolean {
  return (text as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/** The first `max` UTF-16 units of `text`, one fewer when the cut would split a surrogate pair. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}
