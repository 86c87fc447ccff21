import { nextRandom } from "../src/domain/random.js";

/** The simulator's seeded generator (the same mulberry32 the core uses for jitter). */
export class Rng {
  constructor(private seed: number) {}

  float(): number {
    const next = nextRandom(this.seed);
    this.seed = next.seed;
    return next.value;
  }

  /** Whole number in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.float() < probability;
  }
}
