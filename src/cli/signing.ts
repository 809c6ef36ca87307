/** Standard Webhooks signing for `tpx webhooks forward`: the same code the dispatcher signs with. */
export { generateSecret, isValidSecret, SECRET_RULE, signPayload } from '../webhooks/signing.js';
