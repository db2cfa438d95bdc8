//! Published ports: `docker run -p` / CNI `portmap` for a lab's namespaces.
//!
//! A publication maps `<host address>:<host port>` to `<namespace
//! address>:<port>`. They come from the lab file (`publish = [...]` on a
//! namespace, or a top-level `[publish]` table) or from `netlab publish` on
//! a running lab, and live in the lab's state (`LabPlan::publications`).
//!
//! * `plan::port_spec`: the `-p` syntax; `plan::publish`: the
//!   [`Publication`](crate::plan::Publication) type, validation against the
//!   lab (namespace, collisions, the NAT range) and expansion into per-port
//!   `PublishedPort`s, the form both datapaths consume (pure plan data);
//! * [`host`]: checks against the running host side (its addresses, the
//!   ports its sockets already use) and the port reservation;
//! * [`portmap`]: the kernel datapath's iptables rules, as CNI portmap
//!   writes them;
//! * [`show`]: `netlab ports`;
//! * `lab::publish`: the operations (`publish`, `unpublish`, `list`) on a
//!   running lab, also used by the CNI plugin for `portMappings`.
//!
//! On the eBPF datapath the publications are the pinned map
//! `nat_publish`, read by the uplink's ingress program (see
//! `nat::publish`).

pub mod host;
pub mod portmap;
pub mod show;
