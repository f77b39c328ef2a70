// Shared types for the benchmark harness.

import type { RunningServer, ServerKind, ServerSpec } from './servers.js';

export const KINDS: readonly ServerKind[] = ['distribution', 'wharf'];

export interface Ctx {
  sizeBytes: number;
  rounds: number;
  durationMs: number;
  warmupMs: number;
  smallCount: number;
  smallConcurrency: number;
  skopeoLayerMB: number;
  servers: Record<ServerKind, RunningServer>;
  specs: Record<ServerKind, ServerSpec>;
  /** Persistent cache for expensive fixtures (the skopeo image). */
  cacheDir: string;
  /** Scratch directory removed at exit. */
  scratchDir: string;
  /** Worst RSS growth (bytes) seen during each 1 GiB transfer kind, per server. */
  rssGrowth: Record<ServerKind, Record<string, number>>;
  /** Peak RSS of extra server instances (fresh ones started by a benchmark). */
  extraPeak: Record<ServerKind, number>;
  log(msg: string): void;
}

export interface RowDef {
  name: string;
  label: string;
  unit: string;
  /** 'higher': throughput-like, target is a minimum ratio; 'lower': time-like, target is a maximum ratio. */
  better: 'higher' | 'lower';
  target: number;
  /** Shown for context, with no target (e.g. what a client takes without either registry). */
  info?: boolean;
}

export interface Measurement {
  values: Record<string, number>;
  detail?: unknown;
}

export interface Bench {
  /** Group name; BENCH_ONLY matches it or any of its row names. */
  name: string;
  rows: RowDef[];
  /** Untimed setup on each server, once, before the first round. */
  prepare?(ctx: Ctx, kind: ServerKind): Promise<void>;
  /** Untimed setup shared by both servers, before each round (e.g. make this round's data). */
  beforeRound?(ctx: Ctx, round: number): Promise<void>;
  /** One timed measurement on one server. */
  measure(ctx: Ctx, kind: ServerKind, round: number): Promise<Measurement>;
  /** Release anything beforeRound/prepare held. */
  cleanup?(ctx: Ctx): Promise<void>;
}
