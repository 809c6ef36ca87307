/** What the store logs through (pino's Logger fits); the store never logs secrets or tokens. */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
