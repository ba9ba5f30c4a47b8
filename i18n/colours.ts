/**
 * The colour of each patch state, as #rrggbb: the web map, its legend and the KML export draw a state
 * the same way. Open cases are warm, finished ones grey or green.
 */
export const STATUS_COLOUR: Record<string, string> = {
  detected: '#ff2d2d',
  dispatched: '#ff9f1a',
  illegal: '#b517d6',
  rectifying: '#1f6feb',
  rectified: '#12b5a5',
  closed: '#8a9099',
  dismissed: '#c3c9d0',
  legal: '#4caf50',
  false_change: '#c3c9d0',
  pre_existing: '#c3c9d0',
  merged: '#c3c9d0',
  split: '#c3c9d0',
};
