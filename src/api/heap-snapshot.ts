// Counts heap objects by constructor name from a real V8 heap snapshot, for GET /heapstats
// ?snapshot=true. The snapshot JSON is streamed and parsed incrementally — never held whole:
//
//   {"snapshot":{"meta":{"node_fields":[...],"node_types":[[...],...]},...},
//    "nodes":[t,n,id,size,edges,...,  t,n,...],     ← node_fields.length ints per node
//    "edges":[...], ... ,
//    "strings":["...", ...]}                         ← names are indexes into this table
//
// Nodes are counted by (type, name index) while they stream past; the names are resolved when the
// string table arrives at the end. Objects are grouped by constructor name (as DevTools'
// "Constructor" view does); other node types are grouped as "(type)", e.g. "(string)", "(closure)".
// Taking a snapshot pauses the process for as long as V8 needs to walk the heap.

import { getHeapSnapshot } from 'node:v8';

export interface ObjectTypeCount {
  type: string;
  count: number;
}

interface Meta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
}

const NODES_MARKER = '"nodes":[';
const STRINGS_MARKER = '"strings":[';

class SnapshotCounter {
  private state: 'header' | 'nodes' | 'seek-strings' | 'strings' | 'done' = 'header';
  private buffer = '';
  private fieldCount = 0;
  private typeField = 0;
  private nameField = 0;
  private objectType = -1;
  private typeNames: string[] = [];
  private field = 0;
  private number = -1;
  private nodeType = 0;
  private nodeName = 0;
  readonly objectCounts = new Map<number, number>();
  readonly typeCounts = new Map<number, number>();
  // strings
  private stringIndex = 0;
  private inString = false;
  private escaped = false;
  private literal: string[] | null = null;
  readonly names = new Map<number, string>();

  feed(chunk: string): void {
    if (this.state === 'header') return this.feedHeader(chunk);
    if (this.state === 'nodes') return this.feedNodes(chunk, 0);
    if (this.state === 'seek-strings') return this.seekStrings(chunk);
    if (this.state === 'strings') return this.feedStrings(chunk, 0);
  }

  private feedHeader(chunk: string): void {
    this.buffer += chunk;
    const at = this.buffer.indexOf(NODES_MARKER);
    if (at < 0) return;
    const header = JSON.parse(`${this.buffer.slice(0, at).replace(/,\s*$/, '')}}`) as { snapshot: { meta: Meta } };
    const meta = header.snapshot.meta;
    this.fieldCount = meta.node_fields.length;
    this.typeField = meta.node_fields.indexOf('type');
    this.nameField = meta.node_fields.indexOf('name');
    this.typeNames = meta.node_types[0];
    this.objectType = this.typeNames.indexOf('object');
    const rest = this.buffer.slice(at + NODES_MARKER.length);
    this.buffer = '';
    this.state = 'nodes';
    this.feedNodes(rest, 0);
  }

  private feedNodes(chunk: string, from: number): void {
    for (let i = from; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        this.number = (this.number < 0 ? 0 : this.number * 10) + (c - 48);
        continue;
      }
      if (this.number >= 0) this.endNumber();
      if (c === 93 /* ] */) {
        this.state = 'seek-strings';
        return this.seekStrings(chunk.slice(i + 1));
      }
    }
  }

  private endNumber(): void {
    if (this.field === this.typeField) this.nodeType = this.number;
    if (this.field === this.nameField) this.nodeName = this.number;
    this.number = -1;
    this.field += 1;
    if (this.field < this.fieldCount) return;
    this.field = 0;
    const counts = this.nodeType === this.objectType ? this.objectCounts : this.typeCounts;
    const key = this.nodeType === this.objectType ? this.nodeName : this.nodeType;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }

  private seekStrings(chunk: string): void {
    this.buffer += chunk;
    const at = this.buffer.indexOf(STRINGS_MARKER);
    if (at < 0) {
      this.buffer = this.buffer.slice(-STRINGS_MARKER.length);
      return;
    }
    const rest = this.buffer.slice(at + STRINGS_MARKER.length);
    this.buffer = '';
    this.state = 'strings';
    this.feedStrings(rest, 0);
  }

  private feedStrings(chunk: string, from: number): void {
    for (let i = from; i < chunk.length; i++) {
      const ch = chunk[i] as string;
      if (!this.inString) {
        if (ch === '"') {
          this.inString = true;
          this.literal = this.objectCounts.has(this.stringIndex) ? ['"'] : null;
        } else if (ch === ']') {
          this.state = 'done';
          return;
        }
        continue;
      }
      this.literal?.push(ch);
      if (this.escaped) this.escaped = false;
      else if (ch === '\\') this.escaped = true;
      else if (ch === '"') {
        if (this.literal) this.names.set(this.stringIndex, JSON.parse(this.literal.join('')) as string);
        this.inString = false;
        this.literal = null;
        this.stringIndex += 1;
      }
    }
  }

  top(limit: number): ObjectTypeCount[] {
    const all: ObjectTypeCount[] = [];
    for (const [name, count] of this.objectCounts) all.push({ type: this.names.get(name) ?? '(unknown)', count });
    for (const [type, count] of this.typeCounts) all.push({ type: `(${this.typeNames[type] ?? 'unknown'})`, count });
    const merged = new Map<string, number>();
    for (const { type, count } of all) merged.set(type, (merged.get(type) ?? 0) + count);
    return [...merged]
      .map(([type, count]) => ({ type, count }))
      .sort((a, b) => b.count - a.count || a.type.localeCompare(b.type))
      .slice(0, limit);
  }
}

/** Takes a heap snapshot and returns the `limit` most numerous object types. */
export async function topObjectTypes(limit: number): Promise<{ types: ObjectTypeCount[]; nodeCount: number }> {
  const counter = new SnapshotCounter();
  const stream = getHeapSnapshot();
  stream.setEncoding('utf8');
  for await (const chunk of stream) counter.feed(chunk as string);
  let nodeCount = 0;
  for (const n of counter.objectCounts.values()) nodeCount += n;
  for (const n of counter.typeCounts.values()) nodeCount += n;
  return { types: counter.top(limit), nodeCount };
}
