// What the real-time plugin is built from. `limits` is optional for callers (constants apply) and
// always complete inside the plugin.

import type { BrokerApi } from '../../broker/types.js';
import type { Config } from '../../config.js';
import type { RealtimeLimits } from './limits.js';
import type { RealtimeLog } from './subscription.js';

export interface RealtimeOptions {
  broker: BrokerApi;
  log: RealtimeLog;
  config: Config;
  /** Overrides of the constants (tests use small backlogs and short stall windows). */
  limits?: Partial<RealtimeLimits>;
}

export interface RealtimeDeps {
  broker: BrokerApi;
  log: RealtimeLog;
  config: Config;
  limits: RealtimeLimits;
}
