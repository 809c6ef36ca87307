/**
 * The event every peer sends: the full BID_REQUEST example of the seed's EVENTS.md ("A full
 * BID_REQUEST payload", 743 B compact). As a frame with msg_type, msg_id, seq, sent_at and the
 * publisher's `bench_t` stamp it is ≈ 900 B on the wire, issue 13's message size.
 */
export const BENCH_PAYLOAD: Record<string, unknown> = {
  conversation_id: '550e8400-e29b-41d4-a716-446655440000',
  reference_type: 'INSTANT_CASH_OFFER',
  reference_id: 'ico_456',
  asset_type: 'TICKET',
  external_ids: { SEATGEEK: '17346315', TICKETMASTER: 'vvG1YZ4bJalaRJ' },
  asset_details: {
    id: '3b9a0f8e-b6c8-4f79-89a5-2ed522bf9740',
    event_name: 'Taylor Swift - The Eras Tour',
    venue_name: 'MetLife Stadium',
    event_date_utc: '2025-06-15T19:30:00Z',
    event_date_local: '2025-06-15T15:30:00',
  },
  config_details: { id: '741335d5-c78c-414c-9f46-5b3577beea5f', event_type: 'PRIMARY' },
  item_details: {
    key_id: 'a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d',
    key_ids: ['a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d'],
    fair_values: [],
    section: 'Floor 2',
    row: '12',
    seat_numbers: ['1', '2'],
    quantity: 2,
    ticket_type: 'MOBILE',
  },
};
