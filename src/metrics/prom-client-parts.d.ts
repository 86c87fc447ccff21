// Types for the four prom-client modules Monoceros imports one by one (see registry.ts): the
// package's index also loads its Pushgateway (http, https, zlib), cluster aggregation and
// histogram code, which cost start-up time and memory and are never used here.
declare module "prom-client/lib/registry.js" {
  import { Registry } from "prom-client";
  export = Registry;
}
declare module "prom-client/lib/counter.js" {
  import { Counter } from "prom-client";
  export = Counter;
}
declare module "prom-client/lib/gauge.js" {
  import { Gauge } from "prom-client";
  export = Gauge;
}
declare module "prom-client/lib/defaultMetrics.js" {
  import { collectDefaultMetrics } from "prom-client";
  export = collectDefaultMetrics;
}
