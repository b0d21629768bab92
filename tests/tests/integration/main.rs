//! Every integration test, as one binary: one link instead of eighteen.
//! Each module is about one thing, against the clusters `./run.sh test`
//! starts (a primary, its hot standby, and a cluster to restore into).

mod bad_input;
mod cache;
mod crop;
mod diesel_app;
mod dump_restore;
mod fallback;
mod hostile;
mod http;
mod libravatar;
mod lifecycle;
mod memory;
mod owner;
mod races;
mod ratings;
mod resources;
mod route_logs;
mod search_path;
mod standby;
mod tenant;
mod upgrade;
