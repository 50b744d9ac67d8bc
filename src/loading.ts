/**
 * One load at a time (the panel's sections): while a load of the same thing is under way,
 * another call shares it instead of sending a second request (the panel shown again, two
 * clicks on Refresh); `after` starts a fresh one once the current one is done (after a
 * change the user made, which a load under way may not have seen). No DOM, no import;
 * unit-tested in `test/loading.test.mjs`.
 */
export class SharedLoad {
  /** `run(key)` loads what `key` names (a search's words; `''`: the one thing). */
  constructor(private readonly run: (key: string) => Promise<void>) {}

  /** Whether a load is under way. */
  get busy(): boolean {
    return this._current !== null;
  }

  /** Loads `key`, or shares the load of `key` under way. */
  start(key = ''): Promise<void> {
    if (this._current !== null && this._key === key) {
      return this._current;
    }
    const current: Promise<void> = this.run(key).finally(() => {
      if (this._current === current) {
        this._current = null;
      }
    });
    this._current = current;
    this._key = key;
    return current;
  }

  /** Loads `key` once the load under way (if any) is done: what it reads is fresh. */
  async after(key = ''): Promise<void> {
    await this._current?.catch(() => undefined);
    return this.start(key);
  }

  private _current: Promise<void> | null = null;
  private _key = '';
}
