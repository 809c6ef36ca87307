/**
 * The escape hatch of the typed payloads (`Known` in events.ts): the same object, viewed as a
 * record of `unknown` values, to read fields the payload types do not declare (added by the
 * platform after this package was built, or specific to a partner). Validate before use.
 *
 *   loose(event.payload).partner_tier                 // unknown
 *   loose(event.payload.asset_details).performer_rank
 */
export function loose(value: object): Readonly<Record<string, unknown>> {
  return value as Readonly<Record<string, unknown>>;
}
