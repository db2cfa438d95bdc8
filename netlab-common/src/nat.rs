//! Source-NAT map types (the uplink programs). Filled in by the NAT work.
