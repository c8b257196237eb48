// The seven invariants (plus the restore-target rule, chat continuity and never-backwards) of the fault suite and what one run found against them.

export const INVARIANTS = {
  1: 'no stored file is torn',
  2: 'no generation is partial',
  3: 'deleted keys never resurrected',
  4: 'head equals the directory once settled',
  5: 'a restore loads with Baileys and equals the head',
  6: 'one writer per lease token; fencing held',
  7: 'sidecar never down unless killed on purpose',
  /** From the restore-target requirement: a read-only or full target fails cleanly. */
  8: 'failed restore: clear error, previous files intact',
  /** From the chat-continuity requirement: what a live peer sees after a deploy. */
  9: 'chats keep decrypting after a graceful deploy; a stale restore is detected',
  /** SPEC "Protection": what the keeper reports is measured against the directory and the head. */
  10: 'never green while different: the head equals the directory, or protected is 0 with the reason and the lag grows',
  /** From the never-backwards rule (docs/reliability.md): an older login is refused or replaced, never stored. */
  11: 'a stale directory never becomes the head',
} as const;

export type Invariant = keyof typeof INVARIANTS;
export const INVARIANT_IDS = Object.keys(INVARIANTS).map(Number) as Invariant[];

/** What one run found: violations by invariant, plus a trace of what was done, for the failure report. */
export class RunLog {
  readonly violations = new Map<Invariant, string[]>();
  readonly trace: string[] = [];
  /** What the run's faults hit, by label ("landed mid-transaction", ...), for the report. */
  readonly counts = new Map<string, number>();
  private readonly started = Date.now();

  count(label: string, by = 1): void {
    this.counts.set(label, (this.counts.get(label) ?? 0) + by);
  }

  violate(invariant: Invariant, message: string): void {
    const list = this.violations.get(invariant) ?? [];
    list.push(message);
    this.violations.set(invariant, list);
    this.note(`VIOLATION of invariant ${invariant} (${INVARIANTS[invariant]}): ${message}`);
  }

  note(message: string): void {
    this.trace.push(`+${((Date.now() - this.started) / 1000).toFixed(2)}s ${message}`);
  }

  get failed(): boolean {
    return this.violations.size > 0;
  }
}
