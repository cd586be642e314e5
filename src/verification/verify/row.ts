/** One row of `qcow2 verify`'s closing table: what was checked, how many cases, how many failed. */
export interface Row {
  what: string;
  cases: number;
  failed: number;
  note: string;
}
