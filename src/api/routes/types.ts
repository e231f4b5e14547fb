// What every route module receives from buildServer.

import type { BrokerApi } from '../../broker/types.js';
import type { Config } from '../../config.js';
import type { LatencyMetrics } from '../prometheus.js';

export interface RouteDeps {
  broker: BrokerApi;
  config: Config;
  latency: LatencyMetrics;
}
